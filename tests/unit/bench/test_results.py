import json
import os

import pytest

from bench import results


def doc(host, rows, baselines=None):
    return {"schema": results.SCHEMA, "kind": results.KIND,
            "host": {"name": host, "os": "Linux", "toolchain": {}},
            "settings": {"repeat": 3, "warmup": 1, "reference_repeat": 1},
            "baselines": baselines or {}, "rows": rows}


def row(model, route, value, runtime=None):
    return {"model": model, "route": route, "status": "ok", "reason": None, "value": value,
            "coreml": {"runtime": runtime}}


def test_two_hosts_sit_side_by_side(tmp_path):
    results.write_host(str(tmp_path), doc("linux", {"m": {"v3": row("m", "v3", 1)}}))
    results.write_host(str(tmp_path), doc("mac", {"m": {"v3": row("m", "v3", 2)}}))
    hosts, _ = results.read_all(str(tmp_path))
    assert [h["host"]["name"] for h in hosts] == ["linux", "mac"]
    assert hosts[0]["rows"]["m"]["v3"]["value"] == 1
    assert hosts[1]["rows"]["m"]["v3"]["value"] == 2


def test_rerun_replaces_only_its_own_rows(tmp_path):
    out = str(tmp_path)
    results.write_host(out, doc("linux", {"m": {"v3": row("m", "v3", 1), "v4": row("m", "v4", 1)}},
                                {"m": {"x": 1}, "n": {"x": 1}}))
    results.write_host(out, doc("mac", {"m": {"v3": row("m", "v3", 9)}}))
    mac_before = (tmp_path / "mac.json").read_bytes()
    # re-run on linux measuring only m/v4 and baseline n
    results.write_host(out, doc("linux", {"m": {"v4": row("m", "v4", 2)}}, {"n": {"x": 2}}))
    linux = json.loads((tmp_path / "linux.json").read_text())
    assert linux["rows"]["m"]["v3"]["value"] == 1      # not re-measured: kept
    assert linux["rows"]["m"]["v4"]["value"] == 2      # re-measured: replaced
    assert linux["baselines"] == {"m": {"x": 1}, "n": {"x": 2}}
    assert (tmp_path / "mac.json").read_bytes() == mac_before   # other host untouched


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    out = str(tmp_path)
    results.write_host(out, doc("linux", {"m": {"v3": row("m", "v3", 1)}}))
    before = (tmp_path / "linux.json").read_bytes()

    import backends.builds

    def broken_replace(*args):
        raise OSError("disk full")     # the new file written, but never put in place

    monkeypatch.setattr(backends.builds.os, "replace", broken_replace)
    with pytest.raises(OSError):
        results.write_host(out, doc("linux", {"m": {"v3": row("m", "v3", 2)}}))
    assert (tmp_path / "linux.json").read_bytes() == before
    assert sorted(os.listdir(out)) == ["linux.json"]    # no temporary file left behind


def test_injected_rows_are_refused(tmp_path):
    out = str(tmp_path)
    results.write_host(out, doc("mac", {"m": {"v3": row("m", "v3", 1)}}))
    before = (tmp_path / "mac.json").read_bytes()
    fake = row("m", "v4", 5, runtime={"name": "fake", "injected": True})
    with pytest.raises(results.InjectedResultsError):
        results.write_host(out, doc("mac", {"m": {"v4": fake}}))
    # a fake that claims to be coremltools is still caught by its injected mark
    sly = row("m", "v4", 5, runtime={"name": "coremltools", "injected": True})
    with pytest.raises(results.InjectedResultsError):
        results.write_host(out, doc("mac", {"m": {"v4": sly}}))
    assert (tmp_path / "mac.json").read_bytes() == before


def test_read_all_separates_conversions_and_skips_other_json(tmp_path):
    (tmp_path / "conversion-v3.json").write_text(json.dumps({"schema": 1, "route": "v3", "models": {}}))
    (tmp_path / "notes.json").write_text(json.dumps({"something": "else"}))
    results.write_host(str(tmp_path), doc("linux", {}))
    hosts, conversions = results.read_all(str(tmp_path))
    assert [h["host"]["name"] for h in hosts] == ["linux"]
    assert list(conversions) == ["v3"]
