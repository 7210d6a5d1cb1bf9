"""export-xctest: the Swift package's JSON round-trips to the golden arrays, its tolerances
are the report's fp16 figures times the stated factor, its Swift parses, bad input is one
error line."""
import json
import os
import shutil

import numpy as np
import pytest

import parity
from backends import builds
from bench import report
from coreml_routes import cli
from parity import golden_json, swift, tolerance

from golden_builds import BUILD, converted


def syntax_errors(text):
    """(type, line, text) of every ERROR or MISSING node tree-sitter's Swift grammar finds
    (PyPI tree-sitter + tree-sitter-swift, in the `test` extra)."""
    tree_sitter = pytest.importorskip("tree_sitter")
    tree_sitter_swift = pytest.importorskip("tree_sitter_swift")
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))
    found, stack = [], [parser.parse(text.encode()).root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            found.append((node.type, node.start_point[0] + 1, node.text.decode(errors="replace")[:60]))
        stack.extend(node.children)
    return found


def swift_files(out):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".swift"))


def test_golden_json_round_trips_float32_exactly():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(1000).astype(np.float32) * 1e3,
                             np.float32([0.0, -0.0, 1e-45, 1.1754944e-38, 3.4028235e38, -65504.0, 0.1])])
    array = values.reshape(1, 19, 53)
    text = golden_json.dumps(array)
    doc = json.loads(text)
    assert doc["shape"] == [1, 19, 53] and len(doc["data"]) == array.size
    back = golden_json.loads(text)
    assert back.dtype == np.float32 and back.shape == array.shape
    assert back.tobytes() == array.tobytes()          # bit for bit, -0.0 included


@pytest.mark.parametrize("bad, words", [(np.float32([1.0, np.inf]), "inf/NaN"),
                                        (np.int64([1, 2]), "int64")])
def test_golden_json_refuses_what_it_cannot_carry(bad, words):
    with pytest.raises(golden_json.NotWritable, match=words):
        golden_json.dumps(bad)


def test_the_syntax_check_can_fail():
    good = swift.render("m/v4", "neuralNetwork", "model.mlmodel", [("x", "input_x")],
                        [("y", "output_y", 0.5, 0.05)], 10.0)
    tests = next(t for p, t in good.items() if p.startswith("Tests/"))
    assert syntax_errors(tests) == []
    broken = tests.replace("    func testAll() async throws {", "    func testAll() async throws ", 1)
    assert syntax_errors(broken) != []
    assert syntax_errors("let x = [1, 2\nfunc f( {") != []


def test_names_needing_escapes_still_parse():
    names = [('say "hi"', 'input_say_hi_'), ("back\\slash\tand tab", "input_b")]
    files = swift.render('od"d/v9-export', "mlProgram", "model.mlpackage", names,
                         [("out/put", "output_out_put", 1e-3, 1e-4)], 10.0)
    for path, text in files.items():
        assert syntax_errors(text) == [], path
    tests = next(t for p, t in files.items() if p.startswith("Tests/"))
    assert '"say \\"hi\\"": "input_say_hi_"' in tests and '"back\\\\slash\\u{9}and tab"' in tests
    assert swift.identifier("pann_mobilenetv1", "v9-export") == "PannMobilenetv1V9Export"
    assert swift.identifier("3d", "v4") == "M3dV4"


# Every route's artifact: NeuralNetwork (v3, v4) and ML Program (v9, v9-export); and the
# headline model by v4, whose test file the closing note shows.
CASES = [("logmel", r) for r in ("v3", "v4", "v9", "v9-export")] + [("pann_mobilenetv1", "v4")]


@pytest.mark.slow
@pytest.mark.parametrize("model, route", CASES)
def test_export_writes_a_package_that_parses_and_holds_the_golden_data(model, route, tmp_path):
    model_path, inputs, golden = converted(model, route)
    out = tmp_path / "pkg"
    assert cli.main(["export-xctest", os.path.join(BUILD, model, route), "--out", str(out)]) == 0
    facts = json.loads((out / "parity.json").read_text())
    test_dir = next(p for p in (out / "Tests").iterdir())
    resources = test_dir / "Resources"

    for kind, arrays in (("inputs", inputs), ("outputs", golden)):
        assert set(facts[kind]) == set(arrays)
        for name, value in arrays.items():
            text = (resources / "golden" / facts[kind][name]["file"]).read_text()
            assert golden_json.loads(text).tobytes() == value.astype(np.float32).tobytes(), name

    copied = resources / os.path.basename(model_path)
    if os.path.isdir(model_path):
        for d, _, fs in os.walk(model_path):
            for f in fs:
                rel = os.path.relpath(os.path.join(d, f), model_path)
                assert (copied / rel).read_bytes() == open(os.path.join(d, f), "rb").read()
    else:
        assert copied.read_bytes() == open(model_path, "rb").read()

    files = swift_files(str(out))
    assert len(files) == 3
    for path in files:
        assert syntax_errors(open(path).read()) == [], path
    test_text = next(test_dir.glob("*.swift")).read_text()
    for unit in ("cpuOnly", "cpuAndGPU", "cpuAndNeuralEngine", "all"):
        assert "checkParity(.{}, ".format(unit) in test_text
    assert "MLModel.compileModel(at: source)" in test_text
    for name, f in facts["outputs"].items():
        assert "({}, {}, {}),".format(swift.string_literal(name), swift.string_literal(f["file"][:-5]),
                                      repr(f["tolerance"])) in test_text


@pytest.mark.slow
def test_tolerances_are_the_reports_fp16_figures_times_the_factor(tmp_path):
    """The report's fp16 column comes from bench's row; the package's tolerances from the same
    figures, times FACTOR (one fp16 step only where the emulation is exact)."""
    from bench.run import measure_row
    model, route = "logmel", "v4"
    converted(model, route)
    row = measure_row(model, route, BUILD, 1, 0, 1, runtime=None)
    fp16 = row["reference"]["fp16"]
    out = tmp_path / "pkg"
    facts = parity.export(os.path.join(BUILD, model, route), str(out))
    _, golden = builds.read_golden(os.path.join(BUILD, model, route))
    for name, figure in fp16["outputs"].items():
        shown = figure["max_abs_error"]
        assert facts["outputs"][name]["fp16_max_abs_error"] == shown
        expected = 10.0 * (shown if shown > 0 else float(np.spacing(np.float16(np.abs(golden[name]).max()))))
        assert facts["outputs"][name]["tolerance"] == pytest.approx(expected, rel=1e-12)
    worst = max(f["fp16_max_abs_error"] for f in facts["outputs"].values())
    assert "max err {:.2g}".format(worst) in report.accuracy_text(fp16)
    assert tolerance.FACTOR == 10.0


def test_tolerance_rule():
    golden = np.float32([0.5, -3.0])
    assert tolerance.tolerance(0.02, golden) == pytest.approx(0.2)
    # exact emulation: one float16 step at |3.0| (2^-9 = 0.001953125) stands in
    assert tolerance.tolerance(0.0, golden) == pytest.approx(10 * 2.0 ** -9)


def write_build(folder, **record):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "conversion.json"), "w") as f:
        json.dump(dict(record, model="m", route="v4"), f)


def one_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "pkg"
    failed = tmp_path / "b" / "m" / "v9"
    write_build(str(failed), status="failed", stage="convert", error="TypeError: boom\n  more lines")
    nogolden = tmp_path / "b" / "m" / "v4"
    write_build(str(nogolden), status="ok", artifact="model.mlmodel")
    (nogolden / "model.mlmodel").write_bytes(b"x")
    cases = [(str(tmp_path / "nope"), "does not exist"),
             (str(tmp_path / "b"), "is not a build folder (no conversion.json)"),
             (str(failed), "conversion failed at stage convert: TypeError: boom; nothing to export"),
             (str(nogolden), "no golden.npz")]
    for folder, words in cases:
        assert cli.main(["export-xctest", folder, "--out", str(out)]) == 2
        assert words in one_error(capsys)
        assert not out.exists()


def test_out_is_replaced_only_when_it_is_an_earlier_export(tmp_path, capsys):
    model, route = "logmel", "v4"
    converted(model, route)
    folder = os.path.join(BUILD, model, route)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert cli.main(["export-xctest", folder, "--out", str(foreign)]) == 2
    assert "not written by export-xctest" in one_error(capsys)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    out = tmp_path / "pkg"
    parity.export(folder, str(out))
    (out / "Package.swift").write_text("// edited")
    parity.export(folder, str(out))                     # an earlier export: replaced
    assert (out / "Package.swift").read_text().startswith("// swift-tools-version:5.7")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "pkg"]   # no staging left


def test_a_failed_export_leaves_the_earlier_package(tmp_path, monkeypatch):
    model, route = "logmel", "v9"
    converted(model, route)
    folder = os.path.join(BUILD, model, route)
    out = tmp_path / "pkg"
    parity.export(folder, str(out))
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))

    def no_space(*args, **kwargs):
        raise OSError("No space left on device")
    monkeypatch.setattr(shutil, "copytree", no_space)
    with pytest.raises(OSError):
        parity.export(folder, str(out))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
