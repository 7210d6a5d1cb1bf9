"""A run that recommends nothing never replaces a recommendation an earlier run wrote: it
goes beside it as compare.failed.json / .md, and says so."""
import json

from compare.publish import publish

from compare_docs import doc


def test_a_failed_run_keeps_the_earlier_recommendation_and_writes_beside_it(tmp_path):
    folder = tmp_path / "net"
    path, note = publish(str(folder), doc("v9"))
    assert path.endswith("compare.json") and note is None
    good_json, good_md = (folder / "compare.json").read_text(), (folder / "compare.md").read_text()

    path, note = publish(str(folder), doc(None))
    assert path == str(folder / "compare.failed.json")
    assert note == ("kept {} and compare.md: they recommend v9 (an earlier run); this run "
                    "recommends nothing, its result is in compare.failed.json and "
                    "compare.failed.md".format(folder / "compare.json"))
    assert (folder / "compare.json").read_text() == good_json
    assert (folder / "compare.md").read_text() == good_md
    assert json.loads((folder / "compare.failed.json").read_text())["recommended"] is None
    assert "recommended: none" in (folder / "compare.failed.md").read_text()

    publish(str(folder), doc("v9-export"))   # a new recommendation: the failed pair goes
    assert json.loads((folder / "compare.json").read_text())["recommended"] == "v9-export"
    assert sorted(p.name for p in folder.iterdir()) == ["compare.json", "compare.md"]


def test_without_an_earlier_recommendation_a_failed_run_is_the_result(tmp_path):
    path, note = publish(str(tmp_path), doc(None))
    assert path == str(tmp_path / "compare.json") and note is None
    path, note = publish(str(tmp_path), doc(None))
    assert path == str(tmp_path / "compare.json") and note is None
