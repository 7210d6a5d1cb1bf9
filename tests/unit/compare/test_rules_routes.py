"""The recommendation rules, on hand-written route rows: each rule decides one case."""
from compare.rules import recommend


def row(route_ct="9.0", spec=7, size=1000, ops=10, fp16_ok=True, status="ok", verified="matches",
        kind="mlProgram", **extra):
    r = {"status": status, "stage": extra.get("stage"), "reason": extra.get("reason"),
         "verified": {"status": verified, "reason": "because"}, "spec_version": spec,
         "size_bytes": size, "layers_ops": ops, "model_type": kind,
         "toolchain": {"coremltools": route_ct}, "fp32": {"snr_db": 130.0, "max_abs_error": 1e-6},
         "fp16": {"within_tolerance": fp16_ok, "snr_db": 70.0 if fp16_ok else 5.0,
                  "first_nonfinite": None, "failing": None if fp16_ok else "y"}}
    return r


def test_newer_toolchain_wins_over_a_smaller_file():
    rows = {"v4": row("4.1", spec=4, size=900, kind="neuralNetwork"), "v9": row("9.0", size=1000)}
    best, reasons, why_not = recommend(rows)
    assert best == "v9"
    assert why_not["v4"].startswith("older toolchain (coremltools 4.1 vs coremltools 9.0")


def test_same_toolchain_prefers_the_smaller_file():
    best, _, why_not = recommend({"v9": row(size=1200), "v9-export": row(size=1000)})
    assert best == "v9-export" and why_not["v9"].startswith("larger")


def test_a_diverging_or_failed_route_is_never_recommended():
    rows = {"v3": row("3.3", spec=4, verified="diverges", kind="neuralNetwork"),
            "v9": row(status="failed", stage="convert", reason="ValueError: no"),
            "v9-export": row(status="not applicable", reason="ONNX input needs route v3")}
    best, reasons, why_not = recommend(rows)
    assert best is None and reasons == ["no route converts and matches PyTorch"]
    assert why_not == {"v3": "diverges: because", "v9": "failed at stage convert: ValueError: no",
                       "v9-export": "not applicable: ONNX input needs route v3"}


def test_min_target_excludes_newer_models():
    rows = {"v4": row("4.1", spec=4, kind="neuralNetwork"), "v9": row(spec=7)}
    best, reasons, why_not = recommend(rows, min_target="iOS15")
    assert best == "v4"
    assert why_not["v9"] == "needs iOS16 (spec 7), newer than --min-target iOS15"
    assert "deployment target iOS13 is within --min-target iOS15" in reasons


def test_fp16_failure_moves_down_and_cpu_only_when_none_passes():
    rows = {"v4": row("4.1", spec=4, kind="neuralNetwork"), "v9": row(fp16_ok=False)}
    best, _, why_not = recommend(rows)
    assert best == "v4" and why_not["v9"].startswith("fp16 fails")
    best, reasons, _ = recommend({"v9": row(fp16_ok=False), "v4": row("4.1", spec=4, fp16_ok=False)})
    assert best == "v9" and any("CPU only" in r for r in reasons)


def test_readme_quotes_the_rules_as_written_in_code():
    from pathlib import Path
    from compare.rules import RULES
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("<!-- compare-rules -->")[1].split("<!-- /compare-rules -->")[0]
    assert block.strip().splitlines() == ["{}. {}".format(i, r) for i, r in enumerate(RULES, 1)]


def test_a_size_difference_hidden_by_rounding_is_said_in_bytes():
    _, _, why_not = recommend({"v9": row(size=11_900_100), "v9-export": row(size=11_900_000)})
    assert why_not["v9"] == "larger (11,900,100 B vs 11,900,000 B for v9-export)"


def et_row(delegated=19, total=20, outside=None, **kw):
    r = row(kind="executorch", **kw)
    r["runtime"] = "ExecuTorch + Core ML"
    r["toolchain"] = {"executorch": "1.5.1", "coremltools": "9.0"}
    r["executorch"] = {"partitions": 1, "delegated_ops": delegated, "total_ops": total,
                       "not_delegated": outside or {"aten.cumsum.default": total - delegated}}
    return r


def coreai_row(**kw):
    r = row(kind="coreai", spec=None, **kw)
    r.update(runtime="Core AI", min_os="iOS27", toolchain={"coreai-torch": "0.4.3"})
    r["fp16"] = {"not_measured": "the Core AI interpreter runs the program as typed"}
    return r


def test_core_ml_alone_ranks_before_executorch_and_core_ai_and_says_why():
    rows = {"v9": row(size=2000), "et": et_row(size=1000), "coreai": coreai_row(size=500)}
    best, _, why_not = recommend(rows)
    assert best == "v9"
    assert why_not["et"].startswith("ExecuTorch + Core ML runtime, ranked after Core ML for v9")
    assert "the other 1 on ExecuTorch's CPU kernels" in why_not["et"]
    assert why_not["coreai"].startswith("fp16 not evaluated (the Core AI interpreter")


def test_min_target_below_ios27_excludes_core_ai_with_the_reason():
    rows = {"coreai": coreai_row(), "v4": row("4.1", spec=4, kind="neuralNetwork")}
    best, _, why_not = recommend(rows, min_target="iOS18")
    assert best == "v4"
    assert why_not["coreai"] == "needs iOS27 (Core AI), newer than --min-target iOS18"


def test_executorch_alone_is_recommended_with_its_runtime_note():
    best, reasons, _ = recommend({"et": et_row(delegated=20, total=20, outside={}),
                                  "v9": row(status="failed", stage="convert", reason="no")})
    assert best == "et"
    assert "ExecuTorch adds its runtime to the app; 20 of 20 ops run inside Core ML" in reasons
    assert "executorch 1.5.1 + coremltools 9.0" in " ".join(reasons)


def test_table_shows_the_runtime_and_the_share_of_ops_in_core_ml():
    from compare.table import runtime_cell
    assert runtime_cell(et_row(delegated=19, total=20)) == "ExecuTorch + Core ML (95% ops in Core ML)"
    assert runtime_cell(coreai_row()) == "Core AI"
    assert runtime_cell(row()) == "Core ML"


def test_an_onnx_input_is_said_to_match_onnxruntime_not_pytorch():
    # An ONNX file has no PyTorch model: its golden outputs come from onnxruntime.
    onnx = {"v3": row("3.3", spec=4, kind="neuralNetwork")}
    onnx["v3"]["golden_source"] = "onnxruntime (host)"
    _, reasons, _ = recommend(onnx)
    assert reasons[0].startswith("converts and matches onnxruntime (worst SNR")
    assert "PyTorch" not in " ".join(reasons)
    onnx["v3"]["verified"]["status"] = "diverges"
    assert recommend(onnx)[1] == ["no route converts and matches onnxruntime"]
    torch_row = {"v9": row()}
    torch_row["v9"]["golden_source"] = "torch 2.13.0 (this env)"
    assert recommend(torch_row)[1][0].startswith("converts and matches PyTorch (worst SNR")
