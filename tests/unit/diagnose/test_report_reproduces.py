"""A sub-module that fails alone, but not as the whole model did, is reported as such."""
from diagnose.report import render


def test_a_sub_module_failing_differently_is_flagged():
    d = {"route": "v9-export", "model": "m", "precision": "fp32", "verdict": "conversion failed",
         "module": {"path": "emb", "type": "Embedding"}, "failed_op": None, "stage": "convert",
         "error": "TypeError: got float", "attempts": [], "reproduces": False,
         "whole_model_error": "ValueError: dynamic slice", "file": "diagnosis.json"}
    text = render(d)
    assert "smallest failing module: emb (Embedding)" in text
    assert "alone it fails differently from the whole model, whose error was: ValueError: dynamic slice" in text
    same = dict(d, reproduces=None)
    assert "fails differently" not in render(same)
