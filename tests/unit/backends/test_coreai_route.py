"""Route coreai as the host sees it (no Core AI toolchain here): metadata, what it accepts,
and the pure helpers that read coreai-core's summary strings and the program's float types.
The conversion and the interpreter are tested in the route's env (tests/routes/test_coreai.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_registered_with_its_env_and_runtime():
    import backends
    backend = backends.get("coreai")
    assert (backend.env, backend.python, backend.artifact) == ("coreai", "3.11", "model.aimodel")
    assert backend.runtime == "Core AI" and backend.runs_in_host is False
    assert backend.variants == ("fp16",)
    assert backend.compute_units({}) == ["CPU", "GPU", "NE"]


def test_importing_the_route_imports_no_toolchain():
    code = ("import sys, backends; backends.get('coreai'); "
            "print(','.join(m for m in ('torch', 'coreai', 'coreai_torch', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_onnx_and_torchscript_are_not_applicable_with_a_reason():
    import backends
    from backends import sources
    backend = backends.get("coreai")
    assert "ONNX" in backend.accepts(sources.parse("m.onnx"))
    assert "torch.export" in backend.accepts(sources.parse("m.ts"))
    assert backend.accepts(sources.parse("logmel")) is None


def test_fp16_variant_is_known_and_no_compression():
    import backends
    from backends import variants
    variants.check(backends.get("coreai"), "fp16")
    assert "fp16" in variants.PRECISION_VARIANTS
    with pytest.raises(variants.UnknownVariant, match="cannot build variant"):
        variants.check(backends.get("coreai"), "lin8")


@pytest.mark.parametrize("text, expected", [
    ("NDArray (Float32, 1 \u00d7 3 \u00d7 8 \u00d7 8)", ("Float32", [1, 3, 8, 8])),
    ("NDArray (Float16, 1 \u00d7 32000)", ("Float16", [1, 32000])),
    ("NDArray (Float32, 1 \u00d7 ? \u00d7 527)", ("Float32", [1, "?", 527])),
])
def test_summary_signatures_parse(text, expected):
    from backends.coreai_program import parse_signature
    assert parse_signature(text) == expected


@pytest.mark.parametrize("floats, expected", [
    ({"f32"}, "fp32"), ({"f16"}, "fp16"), ({"f16", "f32"}, "mixed"), (set(), None),
])
def test_precision_from_the_program_float_types(floats, expected):
    from backends.coreai_program import precision_of
    assert precision_of(floats) == expected


@pytest.mark.parametrize("mlir_type, element", [
    ("tensor<1x8x?x?xf16>", "f16"), ("tensor<f32>", "f32"), ("tensor<2xui32>", None),
    ("tensor<1x4xbf16>", "bf16"), ("tensor<i1>", None),
])
def test_element_types_read_from_mlir_result_types(mlir_type, element):
    from backends.coreai_program import _ELEMENT
    found = _ELEMENT.search(mlir_type)
    assert (found.group(1) if found else None) == element


def test_a_hook_key_is_matched_by_its_bare_op_name():
    from backends.routes.coreai import LoweringsSeen
    seen = LoweringsSeen()
    seen.counts.update({"aten::relu.default": 3, "aten::convolution.default": 2,
                        "aten::add.Tensor": 1})
    assert seen.misses(["Reluu", "aten::relu.default", "aten::conv.default"]) == {
        "Reluu": ["aten::relu.default"], "aten::conv.default": ["aten::convolution.default"]}
