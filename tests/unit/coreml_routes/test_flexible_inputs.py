"""--input NAME:SHAPE with range (LO..HI) and enumerated (A,B,C) dims, and zoo --samples
LO..HI / A,B,C: parsed into cases the host hands every route, malformed specs one error line."""
import os


from backends import builds
from backends.shapes import FlexShape
from coreml_routes import cli
from coreml_routes.model_args import example_cases, parse_input_spec


def test_a_range_is_cased_at_its_middle_and_both_ends():
    name, shape, dtype = parse_input_spec("x:1x1..16x1024")
    assert (name, dtype, shape.text()) == ("x", "float32", "range 1 x 1..16 x 1024")
    cases = example_cases([(name, shape, dtype)])
    shapes = [(c.label, c.inputs["x"].shape) for c in cases]
    assert shapes[:3] == [("x=1x8x1024", (1, 8, 1024)), ("x=1x1x1024", (1, 1, 1024)),
                          ("x=1x16x1024", (1, 16, 1024))]
    assert [l for l, _ in shapes[3:]] == ["full-scale", "quiet"]   # at the default shape


def test_enumerated_dims_enumerate_their_product():
    shape = parse_input_spec("f:2,3x4,5:float16")[1]
    assert shape.text() == "enumerated {2,3} x {4,5}"
    assert sorted(shape.case_shapes()) == [(2, 4), (2, 5), (3, 4), (3, 5)]
    assert shape.allows((3, 5)) and not shape.allows((3, 6))


def test_fixed_specs_stay_tuples():
    assert parse_input_spec("x:1x3") == ("x", (1, 3), "float32")




def test_the_routes_receive_the_flexible_shapes_beside_the_inputs(tmp_path):
    import argparse
    from coreml_routes import model_args
    model = tmp_path / "m.py"
    model.write_text("def build():\n    pass\n")
    p = argparse.ArgumentParser()
    model_args.add_arguments(p)
    args = p.parse_args(["--model", "{}:build".format(model), "--input", "x:1x1,8,16x4"])
    request = model_args.resolve(args, str(tmp_path))
    shapes = builds.read_input_shapes(request.inputs_npz)
    assert shapes == {"x": FlexShape([1, [1, 8, 16], 4])}
    labels = [c.label for c in builds.read_cases_file(request.inputs_npz)]
    assert labels[:3] == ["x=1x8x4", "x=1x1x4", "x=1x16x4"]


def test_zoo_samples_range(tmp_path):
    import argparse
    from coreml_routes import model_args
    p = argparse.ArgumentParser()
    model_args.add_arguments(p)
    request = model_args.resolve(p.parse_args(["--model", "logmel", "--samples", "16000..64000"]),
                                 str(tmp_path))
    assert request.samples == 40000 and "--samples" in request.flags
    cases = builds.read_cases_file(request.inputs_npz)
    assert [c.inputs["waveform"].shape for c in cases[:3]] == [(1, 40000), (1, 16000), (1, 64000)]
    assert builds.read_input_shapes(request.inputs_npz)["waveform"].text() == "range 1 x 16000..64000"
    assert os.path.exists(builds.input_shapes_path(request.inputs_npz))


def test_zoo_samples_malformed_is_one_error_line(tmp_path, capsys):
    code = cli.main(["convert", "--route", "v9", "--model", "logmel", "--samples", "64000..16000",
                     "--out", str(tmp_path / "build")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "needs 1 <= LO < HI" in err[0], err
