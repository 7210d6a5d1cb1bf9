"""--hooks given more than once: the files' hooks merge; one op converted by two is bad input."""
import pytest

from bad_input import BadInput
from backends.worker import hook_paths, load_all_hooks


def _hooks_file(folder, name, ops):
    body = "HOOKS = {{'v3': {{{}}}}}\n".format(", ".join("{!r}: len".format(op) for op in ops))
    path = folder / name
    path.write_text(body)
    return str(path)


def test_two_files_merge(tmp_path):
    merged = load_all_hooks([_hooks_file(tmp_path, "a.py", ["Pad"]), _hooks_file(tmp_path, "b.py", ["Log"])], "v3")
    assert sorted(merged) == ["Log", "Pad"]
    assert load_all_hooks([_hooks_file(tmp_path, "c.py", ["Pad"])], "v4") is None   # not for v4


def test_one_op_in_two_files_names_both(tmp_path):
    a, b = _hooks_file(tmp_path, "a.py", ["Pad"]), _hooks_file(tmp_path, "b.py", ["Pad", "Log"])
    with pytest.raises(BadInput, match=r"a\.py and .*b\.py both convert 'Pad' for route v3"):
        load_all_hooks([a, b], "v3")


def test_hook_paths_takes_none_one_or_several():
    assert hook_paths(None) == [] and hook_paths("x.py") == ["x.py"] and hook_paths(["a", "b"]) == ["a", "b"]
