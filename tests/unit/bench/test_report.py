import json
import os

from bench import report, results
from coreml_routes import cli

LAT = {"unit": "ms", "median": 12.5, "p90": 14.0, "min": 11.0, "runs": 5, "warmup": 1}
NEEDS = {"not_measured": "needs macOS"}
UNITS = ("CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE", "ALL")


def ok_row(route, coreml):
    return {"model": "m1", "route": route, "status": "ok", "reason": None,
            "conversion": {"status": "ok", "seconds": 1.0},
            "static": {"file_bytes": 2_000_000, "layer_count": 10, "spec_type": "neuralNetwork",
                       "parameters": {"count": 1_500_000, "source": "spec"}, "weight_precision": "fp32"},
            "reference": {"fp32": {"outputs": {"clip_output": {"max_abs_error": 1e-6, "snr_db": 101.25,
                                                               "top5_agreement": 1.0, "nonfinite": 0}},
                                   "first_nonfinite": None},
                          "fp16": {"outputs": {"clip_output": {"max_abs_error": "inf", "snr_db": "-inf",
                                                               "top5_agreement": 0.4, "nonfinite": 3}},
                                   "first_nonfinite": {"layer": "conv_7", "output": "c7", "type": "conv",
                                                       "inf": 3, "nan": 0}},
                          "latency": LAT},
            "coreml": coreml}


def host(name, rows, baselines):
    return {"schema": results.SCHEMA, "kind": results.KIND, "updated": "now",
            "host": {"name": name, "os": "X", "machine": "m", "cpu": "c", "toolchain": {"torch": "2"}},
            "settings": {"repeat": 5, "warmup": 1, "reference_repeat": 1},
            "baselines": baselines, "rows": {"m1": rows}}


def write_fixture(tmp_path):
    linux_rows = {"v3": ok_row("v3", {"runtime": None, "compile": NEEDS,
                                       "compute_units": {cu: NEEDS for cu in UNITS}}),
                  "v9": {"model": "m1", "route": "v9", "status": "failed",
                         "reason": "conversion failed at stage convert: TypeError: boom",
                         "conversion": {"status": "failed", "stage": "convert", "error": "TypeError: boom"}}}
    cell = {"load_seconds": 0.5, "latency": dict(LAT, median=3.25),
            "accuracy": {"clip_output": {"max_abs_error": 0.01, "snr_db": 42.0, "top5_agreement": 1.0}},
            "placement": {"devices": {"NeuralEngine": 9, "CPU": 1}, "layers": []}}
    mac_units = {cu: cell for cu in UNITS}
    mac_units["CPU_AND_GPU"] = {"not_measured": "Core ML CPU_AND_GPU: RuntimeError: nope"}
    mac_rows = {"v3": ok_row("v3", {"runtime": {"name": "coremltools", "injected": False},
                                    "compile": {"ok": True, "seconds": 1.0, "error": None},
                                    "compute_units": mac_units})}
    base = {"m1": {"macs": {"count": 2_000_000_000, "source": "PyTorch-side"},
                   "parameters": {"count": 1_400_000}, "pytorch_cpu": LAT,
                   "onnxruntime_cpu": {"not_measured": "no ONNX file"}}}
    for doc in (host("linux", linux_rows, base), host("mac", mac_rows, base)):
        (tmp_path / "{}.json".format(doc["host"]["name"])).write_text(json.dumps(doc))
    (tmp_path / "conversion-v9.json").write_text(json.dumps({"schema": 1, "route": "v9", "models": {
        "m1": {"status": "failed", "stage": "convert", "error": "TypeError: boom", "seconds": {"convert": 0.5}}}}))


def test_report_tables_and_plots(tmp_path):
    write_fixture(tmp_path)
    assert cli.main(["report", "--results", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text()
    lines = text.splitlines()
    v3 = next(l for l in lines if l.startswith("| v3 "))
    assert "yes" in v3 and "2.0 MB" in v3 and "10 layers" in v3 and "1.50 M fp32" in v3
    assert "SNR ≥ 101.2 dB" in v3 and "top-5 5/5" in v3
    assert "inf/NaN first at conv_7 (conv)" in v3 and "top-5 2/5" in v3
    assert "not measured: needs macOS" in v3                        # linux's compute units
    assert "3.25 ms (p90 14, min 11); load 0.50 s; SNR ≥ 42.0 dB; CPU 1 NeuralEngine 9" in v3
    assert "not measured: Core ML CPU_AND_GPU: RuntimeError: nope" in v3
    v9 = next(l for l in lines if l.startswith("| v9 "))
    assert "no: failed at convert" in v9
    failures = text.split("## Failures")[1].split("## Host baselines")[0]
    assert [[c.strip() for c in l.split("|")[1:5]] for l in failures.splitlines()
            if l.startswith("| m1")] == [["m1", "v9", "convert", "TypeError: boom"]]
    baselines = text.split("## Host baselines")[1]
    assert "2.00 G" in baselines and "12.5 ms (p90 14, min 11)" in baselines
    assert "not measured: no ONNX file" in baselines
    for png in ("latency.png", "accuracy.png"):
        assert "]({})".format(png) in text
        with open(os.path.join(str(tmp_path), png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_header_has_one_latency_column_per_host_and_unit(tmp_path):
    write_fixture(tmp_path)
    hosts, conversions = results.read_all(str(tmp_path))
    headers, rows = report.model_table("m1", hosts, conversions)
    assert headers[-8:] == ["linux " + cu for cu in UNITS] + ["mac " + cu for cu in UNITS]
    assert [r[0] for r in rows] == ["v3", "v9"]     # in route order


def test_report_without_results_is_one_line(tmp_path, capsys):
    assert cli.main(["report", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no results in")


def test_timing_is_shown_per_row_not_per_host(tmp_path):
    """`bench --repeat 3` on one route must not relabel the rows measured with 20 runs."""
    protocol = {"method": "ModelBench", "rounds": 20, "inferences_per_round": 50,
                "warmup_per_round": 1, "trim_low": 10, "trim_high": 10}
    bench_block = {"unit": "ms", "mean": 2.5, "median": 2.4, "p90": 3.0, "min": 2.0, "max": 3.5,
                   "round_means": [2.5] * 20, "runs": 600, "protocol": protocol}
    cell = {"load_seconds": 1.25, "first_prediction_seconds": 0.0405, "latency": bench_block,
            "accuracy": {"clip_output": {"max_abs_error": 0.01, "snr_db": 42.0, "top5_agreement": 1.0}},
            "placement": {"devices": {"NeuralEngine": 9, "CPU": 1}, "layers": [],
                          "estimated_cost": {"by_device": {"NeuralEngine": 0.834, "CPU": 0.166},
                                             "neural_engine_share": 0.834, "ops_without_cost": 0}}}
    v3 = ok_row("v3", {"runtime": {"name": "coremltools", "injected": False}, "protocol": protocol,
                       "compile": {"ok": True, "seconds": 1.0, "error": None},
                       "compute_units": {cu: cell for cu in UNITS}})
    v3["timing"] = {"reference_evaluator": {"runs": 20, "warmup": 3}, "coreml": protocol}
    v9 = ok_row("v9", {"runtime": None, "compile": NEEDS, "compute_units": {cu: NEEDS for cu in UNITS}})
    v9["reference"]["latency"] = dict(LAT, runs=3, warmup=3)
    v9["timing"] = {"reference_evaluator": {"runs": 3, "warmup": 3}, "coreml": None}
    doc = host("mac", {"v3": v3, "v9": v9}, {"m1": {"macs": {"count": 1, "source": "hooks"}, "parameters": {"count": 1},
                                                    "pytorch_cpu": dict(LAT, runs=20, warmup=3)}})
    del doc["settings"]
    (tmp_path / "mac.json").write_text(json.dumps(doc))
    assert cli.main(["report", "--results", str(tmp_path)]) == 0
    lines = (tmp_path / "README.md").read_text().splitlines()
    row3 = next(l for l in lines if l.startswith("| v3 "))
    row9 = next(l for l in lines if l.startswith("| v9 "))
    assert ("mac: evaluator 20 runs after 3 warm-up; Core ML ModelBench: 20 rounds x 50 after 1 "
            "warm-up, 10 lowest + 10 highest of each round dropped") in row3
    assert "mac: evaluator 3 runs after 3 warm-up" in [c.strip() for c in row9.split("|")]
    assert ("2.5 ms (min 2, max 3.5); load 1.25 s, first 40.5 ms; SNR ≥ 42.0 dB; CPU 1 NeuralEngine 9; "
            "Neural Engine 83% of est. cost") in row3
    hosts_header = next(l for l in lines if l.startswith("| host ") and "toolchain" in l)
    assert "runs" not in hosts_header
    baseline = next(l for l in lines if l.startswith("| mac ") and "| m1 " in l)
    assert "| 20 runs after 3 warm-up; 5 runs after 1 warm-up; 3 runs after 3 warm-up |" in baseline


def test_sizes_read_in_bytes_kilobytes_or_megabytes():
    from bench.cells import size_text
    assert [size_text(n) for n in (0, 512, 1500, 999_499, 23_600_000)] == \
        ["0 B", "512 B", "1.5 kB", "999.5 kB", "23.6 MB"]


def test_a_multi_line_error_is_one_row_and_stays_whole_in_json(tmp_path):
    write_fixture(tmp_path)
    error = "TypeError: boom\n  File 'x.py', line 3\nValueError: deeper"
    (tmp_path / "conversion-v9.json").write_text(json.dumps({"schema": 1, "route": "v9", "models": {
        "m1": {"status": "failed", "stage": "convert", "error": error}}}))
    assert cli.main(["report", "--results", str(tmp_path)]) == 0
    failures = (tmp_path / "README.md").read_text().split("## Failures")[1].split("## Host")[0]
    rows = [l for l in failures.splitlines() if l.startswith("| m1")]
    assert len(rows) == 1 and "TypeError: boom …" in rows[0] and "deeper" not in failures
    hosts, conversions = results.read_all(str(tmp_path))
    assert conversions["v9"]["models"]["m1"]["error"] == error


def test_stress_column_only_where_a_stress_input_was_measured(tmp_path):
    write_fixture(tmp_path)
    hosts, conversions = results.read_all(str(tmp_path))
    headers, _ = report.model_table("m1", hosts, conversions)
    assert not [h for h in headers if h.startswith("fp16, ")]       # m1 has no stress case
    row = hosts[0]["rows"]["m1"]["v3"]
    row["reference"]["fp16_full_scale"] = dict(row["reference"]["fp16"], input="full-scale 1 kHz tone")
    headers, rows = report.model_table("m1", hosts, conversions)
    column = headers.index("fp16, full-scale 1 kHz tone")
    assert "inf/NaN first at conv_7" in rows[0][column]


def test_report_writes_the_readme_sample_between_its_markers_only(tmp_path):
    write_fixture(tmp_path)
    readme = tmp_path / "PROJECT.md"
    readme.write_text("# Title\n\nprose\n<!-- sample-table -->\n| pasted | by hand |\n"
                      "<!-- /sample-table -->\n\n## After\n")
    assert cli.main(["report", "--results", str(tmp_path), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nprose\n<!-- sample-table -->\n`m1`")
    assert text.endswith("<!-- /sample-table -->\n\n## After\n")
    assert "pasted" not in text
    v3 = next(l for l in text.splitlines() if l.startswith("| v3 "))
    assert "2.0 MB" in v3 and "10 layers" in v3 and "SNR ≥ 101.2 dB" in v3
    assert "linux CPU_ONLY" in text and "mac CPU_ONLY" in text and "CPU_AND_GPU |" not in text
    assert "1.50 M" not in text     # parameters: in the full table only


def test_report_refuses_a_readme_without_markers_before_writing(tmp_path, capsys):
    write_fixture(tmp_path)
    readme = tmp_path / "PROJECT.md"
    readme.write_text("# no markers\n")
    assert cli.main(["report", "--results", str(tmp_path), "--readme", str(readme)]) == 2
    assert "no such file with <!-- sample-table -->" in capsys.readouterr().err
    assert not (tmp_path / "README.md").exists() and readme.read_text() == "# no markers\n"


def test_report_finds_the_readme_beside_the_results_folder(tmp_path):
    (tmp_path / "results").mkdir()
    write_fixture(tmp_path / "results")
    (tmp_path / "README.md").write_text("<!-- sample-table -->\nold\n<!-- /sample-table -->\n")
    assert cli.main(["report", "--results", str(tmp_path / "results")]) == 0
    assert "| v3 " in (tmp_path / "README.md").read_text()
