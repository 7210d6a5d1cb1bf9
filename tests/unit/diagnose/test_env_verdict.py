"""The host's side of diagnose for et / coreai (``diagnose.in_env``): how the env's report
and the artifact's outputs become the verdict. Expected outputs are PyTorch's (a small
torch module run here); the "artifact" outputs are those values, or them disturbed."""
import numpy as np
import torch

from diagnose import in_env
from diagnose.report import render


def pytorch_output():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    with torch.no_grad():
        return module(torch.randn(2, 4)).numpy()


def coreai_report(first=None):
    ops = [{"node": "addmm", "target": "aten::addmm.default", "coreai_op": 3, "shape": [2, 3],
            "snr_db": None, "max_abs_error": 0.0, "within_tolerance": True}]
    if first:
        ops.append(first)
    return {"ops": ops, "first_divergent": first, "unmapped": [], "fused": {}, "precision": "fp32"}


RELU = {"node": "relu", "target": "aten::relu.default", "coreai_op": 5, "shape": [2, 3],
        "snr_db": -3.0, "max_abs_error": 0.8, "within_tolerance": False}


def document(report, run_error=None):
    return {"report": report, "run_error": run_error, "search_error": None}


def test_outputs_that_depart_with_a_named_op_diverge_there():
    golden = {"y": pytorch_output()}
    got = {"y": np.abs(golden["y"]) + 0.5}
    d = in_env.summarize("coreai", document(coreai_report(RELU)), got, golden, "fp32")
    assert d["verdict"] == "diverges" and d["op"]["node"] == "relu"
    assert d["outputs"]["y"]["agree"] is False
    assert d["counts"] == {"compared": 2, "agree": 1, "fused": 0, "unmapped": 0}


def test_outputs_that_match_are_never_diverges_an_op_that_departs_is_a_note():
    golden = {"y": pytorch_output()}
    d = in_env.summarize("coreai", document(coreai_report(RELU)), dict(golden), golden, "fp32")
    assert d["verdict"] == "matches" and d["op"] is None
    assert d["departs_yet_outputs_match"]["op"]["node"] == "relu"
    d = in_env.summarize("coreai", document(coreai_report()), dict(golden), golden, "fp16")
    assert d["verdict"] == "fp16 within tolerance"


def test_a_runtime_that_stops_is_said_so_not_a_match():
    golden = {"y": pytorch_output()}
    d = in_env.summarize("coreai", document(coreai_report(), run_error="NotEmulated: typed fp32"),
                         {}, golden, "fp16")
    assert d["verdict"] == "runtime stopped" and d["outputs"]["y"] == {"missing": True}


def test_et_partition_then_op_and_the_rendered_lines():
    golden = {"y": pytorch_output()}
    got = {"y": golden["y"] * 0.0}
    relu = {"node": "aten_relu_default", "target": "aten.relu.default", "shape": [2, 3],
            "snr_db": -3.0, "max_abs_error": 0.8, "within_tolerance": False}
    report = {"partitions": [
        {"partition": 0, "file": "0.mlpackage", "precision": "fp32", "tolerance": "fp32",
         "within_tolerance": False, "not_compared": [],
         "outputs": [{"node": "aten_relu_default", "shape": [2, 3], "snr_db": -3.0,
                      "max_abs_error": 0.8, "within_tolerance": False}],
         "ops": [dict(relu, node="aten_linear_default", target="aten.linear.default",
                      snr_db=None, max_abs_error=0.0, within_tolerance=True), relu]}],
        "first_divergent": {"partition": 0, "op": relu}}
    d = in_env.summarize("et", document(report), got, golden, "fp32")
    assert d["verdict"] == "diverges"
    assert d["partition"]["index"] == 0 and d["op"]["node"] == "aten_relu_default"
    assert d["counts"]["partitions"] == 1 and d["counts"]["agree"] == 1
    d.update(model="m", route="et", variant="fp32", precision="fp32", input=None, file="x.json")
    text = render(d)
    assert "first divergent partition: 0 (0.mlpackage, typed fp32" in text
    assert "first divergent op in it: aten.relu.default 'aten_relu_default' shape [2, 3]" in text
    assert "BEYOND TOLERANCE" in text
