"""ML Program evaluator: the op loop (coreml_reference/mlprogram/program.py, values.py,
blobs.py): precision, inputs, errors, weight files, converted torch modules.

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import shutil
import os
import numpy as np
import pytest

from mil_helpers import (EvaluatorError, F, InputError, LayerError, ModelFileError, ShapeError,
                        UnsupportedError, assert_close, build,
                        coreml_reference, ct, mb, only_output, randn,
                        supported_ops, t, torch)


# --- precision ------------------------------------------------------------------------------

def test_fp16_overflow_is_inf(tmp_path):
    """x * x with x = 1000 is 1e6: fine in float32, past float16's max (65504) -> inf."""
    path = build(tmp_path, lambda x: mb.mul(x=x, y=x), {"x": np.full((2,), 1000, np.float32)})
    x = {"x": np.full((2,), 1000, np.float32)}
    np.testing.assert_array_equal(only_output(coreml_reference.predict(path, x)), [1e6, 1e6])
    got = only_output(coreml_reference.predict(path, x, precision="fp16"))
    assert np.all(np.isinf(got)) and np.all(got > 0)


def test_fp16_rounds_weights_and_results(tmp_path):
    # 1 + 2**-12 is exact in float32 but rounds to 1 in float16 (10-bit mantissa).
    w = np.full((3,), 1 + 2.0 ** -12, np.float32)
    path = build(tmp_path, lambda x: mb.mul(x=x, y=w), {"x": np.ones(3, np.float32)})
    x = {"x": np.ones(3, np.float32)}
    assert np.all(only_output(coreml_reference.predict(path, x)) == w)
    assert np.all(only_output(coreml_reference.predict(path, x, precision="fp16")) == 1.0)


def test_precision_must_be_known(tmp_path):
    path = build(tmp_path, lambda x: mb.relu(x=x), {"x": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="precision"):
        coreml_reference.predict(path, {"x": np.ones(3, np.float32)}, precision="int8")


# --- errors ---------------------------------------------------------------------------------

@pytest.fixture
def add_model(tmp_path):
    return build(tmp_path, lambda x, y: mb.add(x=x, y=y, name="sum"),
                 {"x": np.ones((2, 3), np.float32), "y": np.ones((1, 3), np.float32)})


def test_incompatible_broadcast_is_a_shape_error(add_model):
    # Declare y as (4,): the program is valid for (1, 3), and Core ML would reject (2,3)+(4,).
    loaded = coreml_reference.load(add_model)
    spec = loaded.spec
    fn = spec.mlProgram.functions["main"]
    y_type = [i for i in fn.inputs if i.name == "y"][0].type.tensorType
    y_type.rank = 1
    del y_type.dimensions[:]
    y_type.dimensions.add().constant.size = 4
    desc = [i for i in spec.description.input if i.name == "y"][0]
    del desc.type.multiArrayType.shape[:]
    desc.type.multiArrayType.shape.append(4)
    with pytest.raises(ShapeError) as err:
        coreml_reference.predict(spec, {"x": np.ones((2, 3), np.float32),
                                        "y": np.ones(4, np.float32)})
    message = str(err.value)
    assert "[2, 3]" in message and "[4]" in message and "'sum'" in message and "add" in message


def test_unsupported_op_names_type_op_and_file(tmp_path):
    path = build(tmp_path, lambda x: mb.random_uniform(shape=mb.shape(x=x), name="nz"),
                 {"x": np.ones(4, np.float32)})
    assert "random_uniform" not in supported_ops()
    with pytest.raises(UnsupportedError) as err:
        coreml_reference.predict(path, {"x": np.ones(4, np.float32)})
    assert err.value.type_name == "random_uniform" and err.value.layer_name == "nz"
    assert path in str(err.value)


def test_missing_input(add_model):
    with pytest.raises(InputError, match="missing input 'y'"):
        coreml_reference.predict(add_model, {"x": np.ones((2, 3), np.float32)})


def test_unknown_input(add_model):
    with pytest.raises(InputError, match="unknown input"):
        coreml_reference.predict(add_model, {"x": np.ones((2, 3), np.float32),
                                             "y": np.ones((1, 3), np.float32),
                                             "z": np.ones(1, np.float32)})


def test_wrong_shape(add_model):
    with pytest.raises(InputError) as err:
        coreml_reference.predict(add_model, {"x": np.ones((3, 2), np.float32),
                                             "y": np.ones((1, 3), np.float32)})
    assert "'x'" in str(err.value) and "[3, 2]" in str(err.value) and "[2, 3]" in str(err.value)


def test_every_call_of_one_loaded_model_is_checked(add_model):
    """What the inputs take is read from the spec once per loaded model: a bad call after a
    good one is still refused, and a good one after it still runs."""
    from coreml_reference import runner_for
    from coreml_reference.loader import load
    loaded = load(add_model)
    run = runner_for(loaded)
    good = {"x": np.ones((2, 3), np.float32), "y": np.ones((1, 3), np.float32)}
    want = run(loaded, good)
    for bad, message in [(dict(good, x=np.ones((3, 2), np.float32)), r"'x' has shape \[3, 2\]"),
                         ({"x": good["x"]}, "missing input 'y'"),
                         (dict(good, z=np.ones(1, np.float32)), "unknown input")]:
        with pytest.raises(InputError, match=message):
            run(loaded, bad)
    got = run(loaded, good)
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_wrong_dtype(add_model):
    with pytest.raises(InputError, match="dtype"):
        coreml_reference.predict(add_model, {"x": np.full((2, 3), "a"),
                                             "y": np.ones((1, 3), np.float32)})
    with pytest.raises(InputError, match="dtype"):
        coreml_reference.predict(add_model, {"x": np.ones((2, 3), np.complex64),
                                             "y": np.ones((1, 3), np.float32)})


def test_int_input_takes_what_mlmodel_predict_takes(tmp_path):
    # int64 token ids (PyTorch's default) narrow to int32; floats truncate toward zero, as
    # Core ML converts a float multi-array to a declared int32 input.
    path = build(tmp_path, lambda i: mb.add(x=i, y=1), {"i": np.zeros(3, np.int32)})
    out = only_output(coreml_reference.predict(path, {"i": np.arange(3, dtype=np.int64)}))
    np.testing.assert_array_equal(out, [1, 2, 3])
    assert out.dtype == np.int32
    out = only_output(coreml_reference.predict(path, {"i": np.array([1.9, -1.9, 2.0], np.float32)}))
    np.testing.assert_array_equal(out, [2, 0, 3])
    with pytest.raises(InputError, match="'i' has dtype <U1, the model takes int32"):
        coreml_reference.predict(path, {"i": np.full(3, "a")})


def test_op_registry_refuses_a_duplicate_name():
    from coreml_reference.mlprogram.registry import register
    with pytest.raises(ValueError, match="'conv' registered twice"):
        register("conv")(lambda ctx, x: x)


def test_op_errors_name_the_op(tmp_path):
    # ctx.shape_error / ctx.unsupported prefix the op type and name, like the NN context's.
    from coreml_reference.mlprogram.program import Context

    class Op:
        type, name, blocks = "conv", "c1", []

    class Runner:
        precision, where, path = "fp32", " in m.mlpackage", "m.mlpackage"

    ctx = Context(Runner(), Op())
    assert str(ctx.shape_error("bad pad")) == "conv op 'c1' in m.mlpackage: bad pad"
    assert str(ctx.unsupported("pad_type 'x'")) == \
        "conv op 'c1' in m.mlpackage: unsupported pad_type 'x'"


def test_failing_op_is_a_layer_error(tmp_path):
    # An index past the axis: the op fails, and the error names the op and the file.
    idx = np.array([0, 7], np.int32)
    path = build(tmp_path, lambda x, i: mb.gather(x=x, indices=i, axis=0, name="pick"),
                 {"x": np.ones(3, np.float32), "i": idx})
    with pytest.raises(LayerError) as err:
        coreml_reference.predict(path, {"x": np.ones(3, np.float32), "i": idx})
    assert err.value.type_name == "gather" and err.value.layer_name == "pick"
    assert path in str(err.value)


CONV_W = randn(8, 3, 3, 3)


@pytest.fixture
def conv_model(tmp_path):
    """A model whose weight lives in weight.bin (large constants go to the blob file)."""
    path = build(tmp_path, lambda x: mb.conv(x=x, weight=CONV_W, pad_type="same"),
                 {"x": np.ones((1, 3, 5, 5), np.float32)}, name="conv")
    return path


def _weight_bin(package):
    return os.path.join(package, "Data", "com.apple.CoreML", "weights", "weight.bin")


def test_blob_weights_are_read(conv_model):
    x = randn(1, 3, 5, 5)
    got = only_output(coreml_reference.predict(conv_model, {"x": x}))
    np.testing.assert_allclose(got, F.conv2d(t(x), t(CONV_W), padding=1).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_truncated_weight_file(conv_model, tmp_path):
    broken = str(tmp_path / "broken.mlpackage")
    shutil.copytree(conv_model, broken)
    weights = _weight_bin(broken)
    size = os.path.getsize(weights)
    with open(weights, "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(ModelFileError) as err:
        coreml_reference.predict(broken, {"x": np.ones((1, 3, 5, 5), np.float32)})
    assert "weight.bin" in str(err.value) and "truncated" in str(err.value)


def test_corrupt_weight_metadata(conv_model, tmp_path):
    broken = str(tmp_path / "broken.mlpackage")
    shutil.copytree(conv_model, broken)
    with open(_weight_bin(broken), "r+b") as f:
        f.seek(64)                       # the first blob's metadata: overwrite its sentinel
        f.write(b"\0\0\0\0")
    with pytest.raises(ModelFileError, match="sentinel"):
        coreml_reference.predict(broken, {"x": np.ones((1, 3, 5, 5), np.float32)})


def test_missing_weight_file(conv_model, tmp_path):
    broken = str(tmp_path / "broken.mlpackage")
    shutil.copytree(conv_model, broken)
    os.remove(_weight_bin(broken))
    with pytest.raises(ModelFileError, match="weight.bin"):
        coreml_reference.predict(broken, {"x": np.ones((1, 3, 5, 5), np.float32)})


def test_corrupt_spec(conv_model, tmp_path):
    broken = str(tmp_path / "broken.mlpackage")
    shutil.copytree(conv_model, broken)
    spec_file = os.path.join(broken, "Data", "com.apple.CoreML", "model.mlmodel")
    data = open(spec_file, "rb").read()
    with open(spec_file, "wb") as f:
        f.write(data[: len(data) // 3])
    with pytest.raises(EvaluatorError) as err:
        coreml_reference.predict(broken, {"x": np.ones((1, 3, 5, 5), np.float32)})
    assert broken in str(err.value)


def test_recompiles_when_weights_change(conv_model):
    """The compiled-plan cache is keyed by file size and mtime: new weights are seen."""
    x = {"x": np.ones((1, 3, 5, 5), np.float32)}
    before = only_output(coreml_reference.predict(conv_model, x))
    weights = _weight_bin(conv_model)
    data = bytearray(open(weights, "rb").read())
    blob = np.frombuffer(bytes(data[128:128 + CONV_W.nbytes]), np.float32) * 2
    data[128:128 + CONV_W.nbytes] = blob.astype(np.float32).tobytes()
    with open(weights, "wb") as f:
        f.write(bytes(data))
    st = os.stat(weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    after = only_output(coreml_reference.predict(conv_model, x))
    np.testing.assert_allclose(after, 2 * before, rtol=1e-6)


# --- trace and control flow -----------------------------------------------------------------


def test_mlmodel_object_input(conv_model):
    model = ct.models.MLModel(conv_model, skip_model_load=True)
    x = randn(1, 3, 5, 5)
    got = only_output(coreml_reference.predict(model, {"x": x}))
    np.testing.assert_allclose(got, F.conv2d(t(x), t(CONV_W), padding=1).numpy(),
                               rtol=1e-5, atol=1e-5)


# --- small torch modules converted by coremltools 9 (the ops the torch frontend emits) --------

class _AudioCNN(torch.nn.Module):
    """Conv / norm / pool / activation / resize mix, as in audio and vision CNNs."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.inorm = torch.nn.InstanceNorm2d(8, affine=True)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.conv1d = torch.nn.Conv1d(4, 6, 5, stride=2, padding=2)
        self.ln = torch.nn.LayerNorm(6)
        self.fc = torch.nn.Linear(6, 5)
        self.prelu = torch.nn.PReLU(8)

    def forward(self, x):
        x = F.relu6(self.bn(self.conv(x)))
        x = F.max_pool2d(x, 2, ceil_mode=True)
        x = self.prelu(self.inorm(self.dw(x)))
        x = F.avg_pool2d(F.pad(x, (1, 0, 0, 1), mode="reflect"), 2)
        x = F.gelu(self.up(x))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False)
        y = self.conv1d(torch.flatten(x, 2))
        y = self.ln(y.transpose(1, 2))
        y = torch.softmax(F.silu(self.fc(y)), dim=-1)
        return y.mean(dim=1) + torch.tanh(y).amax(dim=1), torch.sigmoid(x).sum(dim=(2, 3))


def _torch_model(tmp_path, precision):
    torch.manual_seed(0)
    module = _AudioCNN().eval()
    with torch.no_grad():           # non-trivial running statistics for batch_norm
        module.bn.running_mean.uniform_(-0.5, 0.5)
        module.bn.running_var.uniform_(0.5, 2.0)
    x = randn(1, 2, 12, 16)
    traced = torch.jit.trace(module, t(x))
    model = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=x.shape)],
                       convert_to="mlprogram", compute_precision=precision)
    path = str(tmp_path / "torch.mlpackage")
    model.save(path)
    with torch.no_grad():
        want = [v.numpy() for v in module(t(x))]
    return path, {"x": x}, want


def test_torch_module_fp32(tmp_path):
    path, inputs, want = _torch_model(tmp_path, ct.precision.FLOAT32)
    got = list(coreml_reference.predict(path, inputs).values())
    for g, w in zip(got, want):
        assert_close(g, w, "fp32")
    got16 = list(coreml_reference.predict(path, inputs, precision="fp16").values())
    for g, w in zip(got16, want):
        assert_close(g, w, "fp16")


def test_torch_module_fp16_program(tmp_path):
    """coremltools' default: an fp16 program (fp16 weights in weight.bin and inline, casts at
    the inputs and outputs). Evaluated in fp32 mode it still computes in fp16 where the
    program says so, so it is held to the fp16 tolerance."""
    path, inputs, want = _torch_model(tmp_path, ct.precision.FLOAT16)
    spec = coreml_reference.load(path).spec
    ops = {op.type for op in spec.mlProgram.functions["main"].block_specializations[
        spec.mlProgram.functions["main"].opset].operations}
    assert "cast" in ops
    got = list(coreml_reference.predict(path, inputs).values())
    for g, w in zip(got, want):
        assert_close(g, w, "fp16")


# --- the zoo's ops are covered by the op cases ------------------------------------------------

ZOO_OPS = {"add", "avg_pool", "batch_norm", "clip", "conv", "expand_dims", "linear", "log",
           "matmul", "max_pool", "mul", "pad", "pow", "reduce_max", "reduce_mean", "relu",
           "relu6", "reshape", "sigmoid", "squeeze", "tile", "transpose", "cast"}


def test_cases_cover_the_zoo_ops():
    """Every op type the zoo's ML Programs use appears in some op case's program (so it is
    checked against numpy / torch), not merely registered."""
    import test_mil_activation
    import test_mil_conv_pool
    import test_mil_elementwise
    import test_mil_linear_norm
    import test_mil_reduction
    import test_mil_resize
    import test_mil_tensor
    from mil_helpers import case_op_types
    covered = set()
    for module in (test_mil_activation, test_mil_conv_pool, test_mil_elementwise,
                   test_mil_linear_norm, test_mil_reduction, test_mil_resize, test_mil_tensor):
        for param in module.CASES:
            covered |= case_op_types(param)
    assert ZOO_OPS - covered == set()
