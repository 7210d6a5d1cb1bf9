"""Variants in each route's own toolchain: the weights our evaluator decodes from a variant
equal that toolchain's own dequantization, and the worker writes <route>+<variant>/.
Python 3.7 compatible (route v3)."""
from __future__ import annotations

import copy
import json
import os
import sys

import numpy as np
import pytest

import backends
from backends import variants

NN_ROUTES = ("v3", "v4")


def nn_route(route):
    if route not in NN_ROUTES:
        pytest.skip("route {} builds ML Programs".format(route))


def tiny_nn_spec(seed=0):
    """innerProduct, convolution and deconvolution with seeded weights (spec layouts:
    (out, in), (out, in, kh, kw), (in, out, kh, kw)); returns (spec, {layer: (shape, axis)})."""
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    rng = np.random.RandomState(seed)
    builder = NeuralNetworkBuilder([("x", datatypes.Array(8, 6, 6))], [("y", None)])
    conv = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)       # builder: (kh, kw, in, out)
    builder.add_convolution("conv", 8, 16, 3, 3, 1, 1, "same", 1, conv,
                            rng.standard_normal(16).astype(np.float32), True, input_name="x",
                            output_name="c")
    deconv = rng.standard_normal((3, 3, 16, 12)).astype(np.float32)
    builder.add_convolution("deconv", 16, 12, 3, 3, 1, 1, "valid", 1, deconv, None, False,
                            is_deconv=True, output_shape=(8, 8), input_name="c", output_name="d")
    builder.add_flatten("flat", 0, "d", "f")
    fc = rng.standard_normal((20, 12 * 8 * 8)).astype(np.float32)
    builder.add_inner_product("fc", fc, rng.standard_normal(20).astype(np.float32),
                              12 * 8 * 8, 20, True, "f", "y")
    layouts = {"conv": ((16, 8, 3, 3), 0), "deconv": ((16, 12, 3, 3), 1), "fc": ((20, 768), 0)}
    return builder.spec, layouts


def weight_fields(layer):
    kind = layer.WhichOneof("layer")
    params = getattr(layer, kind)
    return params.weights


@pytest.mark.parametrize("variant", ["fp16w", "lin8", "lut4", "lut6"])
def test_nn_variant_weights_equal_the_toolchains_dequantization(route, variant):
    nn_route(route)
    import coremltools
    from coremltools.models.neural_network import quantization_utils
    from coreml_reference import nn_weights as weights
    spec, layouts = tiny_nn_spec()
    original = {l.name: np.asarray(weight_fields(l).floatValue, np.float32) for l in spec.neuralNetwork.layers
                if l.name in layouts}
    quantized = variants.NEURALNETWORK[variant](coremltools.models.MLModel(spec))
    if variant == "fp16w":
        # quantize_weights stores float16 bytes; the toolchain has no dequantizer for them:
        # numpy's float16 rounding of the original weights is the reference.
        expected = dict((name, w.astype(np.float16).astype(np.float32)) for name, w in original.items())
    else:
        plain = copy.deepcopy(quantized)
        quantization_utils._dequantize_nn_spec(plain.neuralNetwork)
        expected = dict((l.name, np.asarray(weight_fields(l).floatValue, np.float32))
                        for l in plain.neuralNetwork.layers if l.name in layouts)
    checked = 0
    for layer in quantized.neuralNetwork.layers:
        if layer.name not in layouts:
            continue
        params = weight_fields(layer)
        assert not len(params.floatValue), "{} was not compressed".format(layer.name)
        shape, axis = layouts[layer.name]
        got = weights.decode(params, shape, axis)
        np.testing.assert_array_equal(got, expected[layer.name])
        assert not np.array_equal(got, original[layer.name])    # it did lose precision
        checked += 1
    assert checked == 3


def test_nn_bit_widths_1_to_8(route):
    """Every bit width quantize_weights offers, linear and LUT."""
    nn_route(route)
    import coremltools
    from coremltools.models.neural_network import quantization_utils
    from coreml_reference import nn_weights as weights
    for nbits in range(1, 9):
        for mode in ("linear", "linear_lut"):
            spec, layouts = tiny_nn_spec(nbits)
            quantized = quantization_utils.quantize_weights(coremltools.models.MLModel(spec), nbits, mode)
            quantized = quantized.get_spec() if hasattr(quantized, "get_spec") else quantized
            plain = copy.deepcopy(quantized)
            quantization_utils._dequantize_nn_spec(plain.neuralNetwork)
            for layer, want in zip(quantized.neuralNetwork.layers, plain.neuralNetwork.layers):
                if layer.name in layouts:
                    shape, axis = layouts[layer.name]
                    got = weights.decode(weight_fields(layer), shape, axis)
                    np.testing.assert_array_equal(
                        got, np.asarray(weight_fields(want).floatValue, np.float32),
                        err_msg="{} bits {} {}".format(nbits, mode, layer.name))


def test_ml_program_variants_equal_coremltools_decompression(route, tmp_path):
    if route in NN_ROUTES:
        pytest.skip("route {} builds NeuralNetworks".format(route))
    if not set(backends.get(route).variants) & set(variants.MLPROGRAM):
        pytest.skip("route {} has no ML Program compression variants".format(route))
    import coremltools as ct
    import torch
    import coreml_reference
    from coremltools.optimize.coreml import decompress_weights
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(8, 64, 3), torch.nn.Flatten(),
                                 torch.nn.Linear(64 * 6 * 6, 16)).eval()   # >= 2048 weights each
    x = np.random.RandomState(0).standard_normal((1, 8, 8, 8)).astype(np.float32)
    bases = {}
    for variant, fn in variants.MLPROGRAM.items():
        target = variants.MIN_TARGETS.get(variant, "iOS16")   # grouped palettes need iOS 18
        if target not in bases:
            bases[target] = ct.convert(torch.jit.trace(module, torch.from_numpy(x)),
                                       convert_to="mlprogram",
                                       inputs=[ct.TensorType(name="x", shape=x.shape)],
                                       minimum_deployment_target=getattr(ct.target, target))
        compressed = fn(bases[target])
        path = str(tmp_path / "{}.mlpackage".format(variant))
        compressed.save(path)
        ours = {}
        coreml_reference.predict(path, {"x": x}, trace=lambda n, t, v, l=None: ours.__setitem__(n, v)
                                 if t.startswith("constexpr_") else None)
        plain = decompress_weights(compressed)
        expected = dict((op.outputs[0].name, op.outputs[0].val)
                        for op in plain._mil_program.functions["main"].operations
                        if op.op_type == "const" and op.outputs[0].name in ours)
        assert len(expected) == 2, "{}: conv and linear weights compressed".format(variant)
        for name, want in expected.items():
            np.testing.assert_array_max_ulp(np.asarray(ours[name]), want, maxulp=1)


def test_worker_writes_the_variant_folder(route, tmp_path):
    """The whole path: a zoo model converted as a variant lands in <route>+<variant>/ with a
    record naming it, and its weights are compressed in the file."""
    from backends.runner import convert_isolated
    variant = "lin8"
    if variant not in backends.get(route).variants:
        pytest.skip("route {} has no {} variant".format(route, variant))
    record = convert_isolated(sys.executable, route, "logmel", str(tmp_path), 32000, variant=variant,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    folder = tmp_path / "logmel" / (route + "+" + variant)
    assert record["status"] == "ok", record.get("error")
    with open(str(folder / "conversion.json")) as f:
        saved = json.load(f)
    assert saved["variant"] == variant and saved["compute_units"] == ["CPU", "GPU", "NE"]
    # et compresses inside each Core ML partition while lowering (a compile spec): no stage
    # of its own, and the constexpr ops are in the partition, not in the .pte's own ops.
    assert "compress" in saved["seconds"] or route == "et"
    if route in NN_ROUTES:
        import coremltools
        spec = coremltools.utils.load_spec(str(folder / "model.mlmodel"))
        assert any(len(getattr(l, l.WhichOneof("layer")).weights.rawValue)
                   for l in spec.neuralNetwork.layers if l.WhichOneof("layer") in ("convolution", "innerProduct"))
    else:
        ops = saved["partition_specs"][0]["op_types"] if route == "et" else saved["op_types"]
        assert ops.get("constexpr_affine_dequantize", 0) >= 1
    assert not (tmp_path / "logmel" / route).exists()    # the default folder is untouched


def test_unavailable_variant_is_bad_input(route, tmp_path):
    from backends.runner import BadInput, convert_isolated
    other = "prune50" if route in NN_ROUTES else "fp16w"
    with pytest.raises(BadInput, match="cannot build variant"):
        convert_isolated(sys.executable, route, "logmel", str(tmp_path), 32000, variant=other,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert not (tmp_path / "logmel" / (route + "+" + other)).exists()
