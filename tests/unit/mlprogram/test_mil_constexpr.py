"""Compressed ML Program weights: each case compresses a tiny model with coremltools.optimize
(the v9 toolchain: coremltools 9), saves it, and checks the dense weights our evaluator
computes from the saved file against coremltools' own ``decompress_weights`` of the same
model. iOS16 ops (packed uint8 indices and masks) and the iOS18 forms (typed sub-byte
tensors, per-block scales and LUTs, vector LUTs, joint sparse + quantized / palettized)."""
import numpy as np
import pytest

import coreml_reference

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")
cto = pytest.importorskip("coremltools.optimize.coreml")


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(8, 32, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(32 * 6 * 6, 64)).eval()


@pytest.fixture(scope="module")
def converted():
    """target name -> (MLModel, input): one conversion per deployment target and precision."""
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 8)).astype(np.float32)
    traced = torch.jit.trace(tiny_model(), torch.from_numpy(x))
    found = {}

    def get(target, precision="fp16"):
        key = (target, precision)
        if key not in found:
            found[key] = ct.convert(
                traced, inputs=[ct.TensorType(name="x", shape=x.shape)], convert_to="mlprogram",
                minimum_deployment_target=getattr(ct.target, target),
                compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16)
        return found[key], x
    return get


def palettize(nbits, **kw):
    return lambda m: cto.palettize_weights(m, cto.OptimizationConfig(
        global_config=cto.OpPalettizerConfig(nbits=nbits, weight_threshold=0, **kw)))


def quantize(**kw):
    return lambda m: cto.linear_quantize_weights(m, cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(weight_threshold=0, **kw)))


def prune(sparsity=0.5):
    return lambda m: cto.prune_weights(m, cto.OptimizationConfig(
        global_config=cto.OpMagnitudePrunerConfig(target_sparsity=sparsity, weight_threshold=0)))


def joint(first, then):
    return lambda m: then(first(m))


CASES = {
    # name: (target, program precision, compress, op types the saved program must hold)
    "ios16 lin8 symmetric": ("iOS16", "fp16", quantize(mode="linear_symmetric"),
                             {"constexpr_affine_dequantize"}),
    "ios16 lin8 zero point, fp32 program": ("iOS16", "fp32", quantize(mode="linear", dtype="uint8"),
                                            {"constexpr_affine_dequantize"}),
    "ios16 lut1": ("iOS16", "fp16", palettize(1, mode="uniform"), {"constexpr_lut_to_dense"}),
    "ios16 lut2": ("iOS16", "fp16", palettize(2, mode="uniform"), {"constexpr_lut_to_dense"}),
    "ios16 lut4": ("iOS16", "fp16", palettize(4, mode="uniform"), {"constexpr_lut_to_dense"}),
    "ios16 lut6": ("iOS16", "fp16", palettize(6, mode="uniform"), {"constexpr_lut_to_dense"}),
    "ios16 lut8": ("iOS16", "fp32", palettize(8, mode="uniform"), {"constexpr_lut_to_dense"}),
    "ios16 prune50": ("iOS16", "fp16", prune(), {"constexpr_sparse_to_dense"}),
    "ios18 int4 per block": ("iOS18", "fp16", quantize(mode="linear_symmetric", dtype="int4",
                                                       granularity="per_block", block_size=8),
                             {"constexpr_blockwise_shift_scale"}),
    "ios18 uint8 offset per channel": ("iOS18", "fp32", quantize(mode="linear", dtype="uint8"),
                                       {"constexpr_blockwise_shift_scale"}),
    "ios18 lut3 per grouped channel": ("iOS18", "fp16", palettize(
        3, mode="uniform", granularity="per_grouped_channel", group_size=4),
        {"constexpr_lut_to_dense"}),
    "ios18 prune50": ("iOS18", "fp16", prune(), {"constexpr_sparse_to_dense"}),
    "ios18 prune + lut4": ("iOS18", "fp16", joint(prune(), lambda m: cto.palettize_weights(
        m, cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(
            nbits=4, mode="uniform", weight_threshold=0)), joint_compression=True)),
        {"constexpr_lut_to_sparse", "constexpr_sparse_to_dense"}),
    "ios18 prune + int8": ("iOS18", "fp16", joint(prune(), lambda m: cto.linear_quantize_weights(
        m, cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", weight_threshold=0)), joint_compression=True)),
        {"constexpr_sparse_blockwise_shift_scale", "constexpr_sparse_to_dense"}),
}


def ops_in(spec):
    block = spec.mlProgram.functions["main"]
    return {op.type for op in block.block_specializations[block.opset].operations}


def dense_consts(mlmodel):
    """coremltools' own dequantization: name -> dense weight, after decompress_weights."""
    plain = cto.decompress_weights(mlmodel)
    return {op.outputs[0].name: op.outputs[0].val
            for op in plain._mil_program.functions["main"].operations
            if op.op_type == "const" and isinstance(op.outputs[0].val, np.ndarray)
            and op.outputs[0].val.size > 64}


@pytest.mark.parametrize("case", list(CASES))
def test_dense_weights_match_coremltools(case, converted, tmp_path):
    target, precision, compress, op_types = CASES[case]
    base, x = converted(target, precision)
    compressed = compress(base)
    path = str(tmp_path / "model.mlpackage")
    compressed.save(path)
    assert op_types <= ops_in(compressed.get_spec())

    ours = {}

    def keep(name, type_name, value, layer_name=None):
        if type_name.startswith("constexpr_"):
            ours[name] = np.array(value)
    coreml_reference.predict(path, {"x": x}, trace=keep)

    expected = dense_consts(compressed)
    compared = sorted(set(expected) & set(ours))
    assert len(compared) == 2, "conv and linear weights, found {} (ours {})".format(
        sorted(expected), sorted(ours))
    for name in compared:
        want, got = expected[name], ours[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        # Same arithmetic up to one rounding of the declared type.
        np.testing.assert_array_max_ulp(got, want, maxulp=1)


# Vector palettization needs k-means (scikit-learn, not in the pinned envs) and constexpr_cast
# has no optimize API: build those ops with coremltools' MIL builder, and take the expected
# values from coremltools' own op definitions (``decompress`` / value inference).

def built(tmp_path, make_weight, shape, target):
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=shape, dtype=types.fp32)],
                opset_version=getattr(ct.target, target))
    def prog(x):
        return mb.add(x=x, y=make_weight(mb), name="out")
    expected = [op for op in prog.functions["main"].operations if op.op_type.startswith("constexpr_")]
    mlmodel = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, target),
                         compute_precision=ct.precision.FLOAT32)
    path = str(tmp_path / "model.mlpackage")
    mlmodel.save(path)
    return path, expected[-1]


def run_ours(path, shape):
    seen = {}

    def keep(name, type_name, value, layer_name=None):
        if type_name.startswith("constexpr_"):
            seen[type_name] = np.array(value)
    coreml_reference.predict(path, {"x": np.zeros(shape, np.float32)}, trace=keep)
    return seen


@pytest.mark.parametrize("vector_axis", [0, 1, 2])
def test_vector_lut_matches_coremltools(vector_axis, tmp_path):
    from coremltools.converters.mil.mil import types
    from coremltools.converters.mil.mil.ops.defs.iOS18 import constexpr_lut_to_dense as ios18_lut
    rng = np.random.default_rng(vector_axis)
    indices = rng.integers(0, 4, size=(4, 6, 2)).astype(types.np_uint2_dtype)
    lut = rng.standard_normal((2, 1, 1, 4, 3)).astype(np.float32)     # 2 LUTs along axis 0, vectors of 3
    shape = [4, 6, 2]
    shape[vector_axis] *= 3
    path, op = built(tmp_path, lambda mb: mb.constexpr_lut_to_dense(
        indices=indices, lut=lut, vector_axis=np.int32(vector_axis)), shape, "iOS18")
    want = ios18_lut.decompress(indices, lut, np.int32(vector_axis))
    got = run_ours(path, shape)["constexpr_lut_to_dense"]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_constexpr_cast_matches_coremltools(tmp_path):
    source = np.random.default_rng(3).standard_normal((5, 7)).astype(np.float16)
    path, op = built(tmp_path, lambda mb: mb.constexpr_cast(source_val=source, output_dtype="fp32"),
                     [5, 7], "iOS16")
    want = op.materialized_val_inference()
    got = run_ours(path, [5, 7])["constexpr_cast"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
