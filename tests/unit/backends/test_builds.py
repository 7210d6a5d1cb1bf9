"""The build folder contract: names, golden arrays, and conversion records old and new."""
import json

import numpy as np

from backends import builds


def test_folder_names():
    assert builds.folder_name("v9", "lut4") == "v9+lut4"
    assert builds.folder_name("v9-export") == "v9-export"
    assert builds.split_folder_name("v9-export+fp32") == ("v9-export", "fp32")
    assert builds.split_folder_name("v3") == ("v3", None)
    assert builds.route_dir("b", "m", "et", "fp32").replace("\\", "/") == "b/m/et+fp32"


def test_golden_round_trip_keeps_names_and_order(tmp_path):
    inputs = {"waveform": np.arange(4, dtype=np.float32), "b": np.ones(2, np.int32)}
    outputs = {"clip": np.zeros((1, 3), np.float32), "emb": np.full(2, 7.0, np.float32)}
    builds.write_golden(str(tmp_path), inputs, outputs)
    with np.load(str(tmp_path / "golden.npz")) as data:      # the file, as other tools see it
        assert sorted(data.files) == ["input:b", "input:waveform", "output:clip", "output:emb"]
    got_in, got_out = builds.read_golden(str(tmp_path))
    assert list(got_in) == ["waveform", "b"] and list(got_out) == ["clip", "emb"]
    assert np.array_equal(got_out["emb"], outputs["emb"])


def test_a_users_plain_npz_is_read_as_inputs(tmp_path):
    np.savez(str(tmp_path / "x.npz"), x=np.ones(3, np.float32))
    assert list(builds.read_arrays(str(tmp_path / "x.npz"))[0]) == []
    assert list(builds.read_arrays(str(tmp_path / "x.npz"), plain_are_inputs=True)[0]) == ["x"]


def test_record_keeps_unknown_keys_and_reads_old_files(tmp_path):
    old = {"schema": 1, "route": "v3", "model": "logmel", "status": "ok", "stage": None,
           "error": None, "artifact": "model.mlmodel", "layer_count": 12,
           "future_key": {"nested": [1, 2]}}
    (tmp_path / "conversion.json").write_text(json.dumps(old))
    record = builds.read_record(str(tmp_path))
    assert record.ok and record.artifact == "model.mlmodel"
    assert record["layer_count"] == 12 and record.get("missing", "d") == "d"
    record.verified = {"status": "matches"}
    builds.write_record(str(tmp_path), record)
    again = json.loads((tmp_path / "conversion.json").read_text())
    assert again["future_key"] == {"nested": [1, 2]} and again["layer_count"] == 12
    assert again["verified"] == {"status": "matches"}
    assert "torch_drift" not in again        # unset facts are not written as null


def test_unreadable_record_is_none(tmp_path):
    (tmp_path / "conversion.json").write_text("{half")
    assert builds.read_record(str(tmp_path)) is None
    assert builds.read_record(str(tmp_path / "nowhere")) is None


def test_cases_round_trip_and_the_first_stays_readable_alone(tmp_path):
    loud = builds.Case("example", {"x": np.ones((1, 4), np.float32)}, {"y": np.full((1, 2), 2.0, np.float32)})
    quiet = builds.Case("quiet", {"x": np.full((1, 8), 1e-3, np.float32)}, {"y": np.zeros((1, 2), np.float32)})
    builds.write_cases(str(tmp_path), [loud, quiet])
    cases = builds.read_cases(str(tmp_path))
    assert [c.label for c in cases] == ["example", "quiet"]
    assert cases[1].inputs["x"].shape == (1, 8) and np.array_equal(cases[1].outputs["y"], quiet.outputs["y"])
    inputs, outputs = builds.read_golden(str(tmp_path))       # a one-case reader sees the first
    assert list(inputs) == ["x"] and inputs["x"].shape == (1, 4) and outputs["y"][0, 0] == 2.0


def test_an_old_golden_file_is_one_case(tmp_path):
    builds.write_golden(str(tmp_path), {"x": np.ones(3, np.float32)}, {"y": np.ones(1, np.float32)})
    cases = builds.read_cases(str(tmp_path))
    assert [c.label for c in cases] == ["example"] and list(cases[0].outputs) == ["y"]


def test_case_labels_must_be_distinct():
    import pytest
    case = builds.Case("a", {}, {})
    with pytest.raises(ValueError):
        builds.write_cases("unused", [case, case])
