"""coreml-routes ops: the op names a hook can take, and the warning for a hook that takes none.

The slow tests run the CLI in a subprocess on the planted models of tests/models/planted.py
and the route's env (route v9: this Python, as in test_diagnose)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "models"))
import planted  # noqa: E402 — the planted-fault models, as a user's file

TYPO_HOOKS = '''
def relu(context, node):
    from coremltools.converters.mil import Builder as mb
    context.add(mb.relu(x=context[node.inputs[0]], name=node.name))
HOOKS = {"v9-export": {"relu": relu, "batch_norm": relu}}
'''


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "coreml_routes.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=600)


def listed(stdout):
    """{op name: count} from the listing's rows."""
    rows = [l.split() for l in stdout.splitlines()[2:] if l.startswith("  ")]
    return dict((r[1], int(r[0])) for r in rows if len(r) == 2 and r[0].isdigit())


@pytest.mark.parametrize("args, words", [
    (["ops", "--route", "v5", "--model", "logmel"], "unknown route 'v5'"),
    (["ops", "--route", "v9", "--model", "resnet"], "unknown model 'resnet'"),
])
def test_bad_requests_give_one_line_and_exit_2(args, words):
    done = cli(*args)
    assert done.returncode == 2
    errors = [l for l in done.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], done.stderr


@pytest.mark.slow
def test_v9_export_lists_aten_names_with_counts(tmp_path):
    """The tiny tagger's one BatchNorm1d is, to the torch.export frontend, a
    ``_native_batch_norm_legit_no_training`` node (not TorchScript's ``batch_norm``)."""
    module = planted.pool1d()
    kinds = [type(m) for m in module.modules()]
    done = cli("ops", "--route", "v9-export", *planted.cli_args("test_pool1d", tmp_path))
    assert done.returncode == 0, done.stderr
    ops = listed(done.stdout)
    assert ops["_native_batch_norm_legit_no_training"] == kinds.count(nn.BatchNorm1d)
    assert ops["relu"] == kinds.count(nn.ReLU)
    assert "batch_norm" not in ops
    assert done.stdout.startswith("route v9-export (torch.export (ATen) op")


@pytest.mark.slow
def test_a_hook_matching_no_op_is_one_warning_line(tmp_path):
    hooks = tmp_path / "hooks.py"
    hooks.write_text(TYPO_HOOKS)
    done = cli("convert", "--route", "v9-export", *planted.cli_args("test_pool1d", tmp_path), "--out",
               str(tmp_path / "build"), "--hooks", str(hooks))
    assert done.returncode == 0, done.stderr
    warnings = [l for l in done.stderr.splitlines() if l.startswith("warning:")]
    assert len(warnings) == 1, done.stderr         # "relu" matches: no line for it
    assert "route v9-export" in warnings[0] and "'batch_norm'" in warnings[0]
    assert "closest: _native_batch_norm_legit_no_training" in warnings[0]


def test_misses_name_the_closest_ops():
    from backends.base import OpsSeen
    seen = OpsSeen()
    seen.counts.update({"Relu": 3, "Pad": 2, "Conv": 1})
    seen.other_keys.add("node_7")
    assert seen.misses(["Relu", "node_7"]) == {}
    assert seen.misses(["relu", "Padd"]) == {"relu": ["Relu"], "Padd": ["Pad"]}
    assert seen.misses(["zzzz"]) == {"zzzz": ["Conv", "Pad", "Relu"]}   # none close: some names
