"""--model and the input flags: what the user asks to convert is checked before any route
runs; malformed requests are one error line and exit 2, with nothing written."""
import numpy as np
import pytest

from backends import sources
from coreml_routes import cli
from bad_input import BadInput
from coreml_routes.model_args import example_inputs, parse_input_spec, parse_int_range


@pytest.mark.parametrize("spec, expected", [
    ("x:1x3x224x224", ("x", (1, 3, 224, 224), "float32")),
    ("tokens:1x16:int64", ("tokens", (1, 16), "int64")),
    ("h:2:float16", ("h", (2,), "float16")),
])
def test_input_specs(spec, expected):
    assert parse_input_spec(spec) == expected


@pytest.mark.parametrize("spec, words", [
    ("x", "expected NAME:SHAPE[:DTYPE]"),
    ("x:1x3:int64:extra", "expected NAME:SHAPE[:DTYPE]"),
    (":1x3", "expected NAME:SHAPE[:DTYPE]"),
    ("x:1xx3", "must be positive sizes joined by x"),
    ("x:1,1", "must be positive sizes joined by x"),
    ("x:1x0x3", "must be positive sizes joined by x"),
    ("x:1x3:double", "DTYPE 'double' is not one of float32, float16, int32, int64"),
    ("my-x:1x3", "must be letters, digits and _"),
    # flexible dims (backends.shapes): a range LO..HI or sizes A,B,C, not both in one input
    ("x:1x0..4", "range '0..4' needs 1 <= LO < HI"),
    ("x:1x8..4", "range '8..4' needs 1 <= LO < HI"),
    ("x:1x..4", "must be LO..HI"),
    ("x:1,1x3", "needs distinct positive sizes"),
    ("x:1x1..4x2,3", "not both"),
    ("x:1xax3", "is not a positive size"),
])
def test_malformed_input_specs_are_one_error_line_and_exit_2(spec, words, tmp_path, capsys):
    model = tmp_path / "m.py"
    model.write_text("def build():\n    raise SystemExit('never built')\n")
    code = cli.main(["convert", "--route", "v9", "--model", "{}:build".format(model),
                     "--input", spec, "--out", str(tmp_path / "build")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("args, words", [
    (["--model", "nope.py:build", "--input", "x:1x3"], "model file not found: nope.py"),
    (["--model", "m.py:build"], "needs its inputs: --input NAME:SHAPE"),
    (["--model", "m.py:build", "--input", "x:1x3", "--input", "x:1x4"], "'x' is given twice"),
    (["--model", "m.py:build", "--input", "x:1x3", "--inputs", "i.npz"], "not both"),
    (["--model", "m.py:9build", "--input", "x:1x3"], "is not a function name"),
    (["--model", "m.py:build", "--input", "x:1x3:int64", "--int-range", "5,5"], "LO must be below HI"),
    (["--model", "m.py:build", "--input", "x:1x3", "--int-range", "a,b"], "expected LO,HI"),
    (["--model", "m.py:build", "--inputs", "missing.npz"], "--inputs file not found"),
    (["--model", "m.py:build", "--inputs", "m.py"], "not a readable .npz"),
    (["--model", "m.py:build", "--input", "x:1x3", "--name", "../up"], "cannot name a folder"),
    (["--model", "logmel", "--input", "x:1x3"], "--input is for your own models"),
    (["--model", "logmel", "--inputs", "i.npz"], "--inputs file not found"),
    (["--model", "m.py:build", "--input", "x:1x3", "--requirements", "nope.txt"],
     "requirements file not found"),
    (["--model", "m.py:build", "--input", "x:1x3", "--checkpoint", "m.py"], "is not a PyTorch checkpoint"),
])
def test_bad_model_requests(args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text("def build():\n    raise SystemExit('never built')\n")
    code = cli.main(["compare", *args, "--out", str(tmp_path / "build")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "build").exists()


def test_inputs_npz_with_an_object_array_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text("def build():\n    pass\n")
    np.savez(tmp_path / "i.npz", x=np.array([{"a": 1}], dtype=object))
    code = cli.main(["compare", "--model", "m.py:build", "--inputs", "i.npz", "--out", "b"])
    assert code == 2 and "not a readable .npz" in capsys.readouterr().err


def test_example_inputs_are_seeded_and_typed():
    specs = [("x", (2, 3), "float32"), ("ids", (1, 50), "int64"), ("h", (4,), "float16")]
    first, again = example_inputs(specs, (10, 20)), example_inputs(specs, (10, 20))
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert first["x"].dtype == np.float32 and first["h"].dtype == np.float16
    assert first["ids"].dtype == np.int64
    assert first["ids"].min() >= 10 and first["ids"].max() < 20
    # Integers default to [0, 100): token ids that fit any vocabulary of 100 or more.
    ids = example_inputs([("ids", (1000,), "int32")])["ids"]
    assert ids.min() >= 0 and ids.max() < 100 and len(set(ids.tolist())) > 50


def test_int_range():
    assert parse_int_range("0,30522") == (0, 30522)
    with pytest.raises(BadInput):
        parse_int_range("3")


@pytest.mark.parametrize("spec, kind, name", [
    ("pann_mobilenetv1", sources.ZOO, "pann_mobilenetv1"),
    ("models/crepe_model.py:build", sources.FACTORY, "crepe_model-build"),
    ("mypkg.nets:make_net", sources.FACTORY, "nets-make_net"),
    ("exported/tagger.pt", sources.TORCHSCRIPT, "tagger"),
    ("tagger.TS", sources.TORCHSCRIPT, "tagger"),
    ("model.onnx", sources.ONNX, "model"),
])
def test_model_specs(spec, kind, name):
    source = sources.parse(spec)
    assert source.kind == kind and source.default_name == name
