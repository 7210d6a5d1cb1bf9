"""`coreml-routes predict` names a classifier's top classes (--labels, or AudioSet's names for
a PANNs build) and prints each output's statistics and first values, on models made here."""
import json

import numpy as np
import pytest

from coreml_routes import cli, output_text
from zoo import labels as zoo_labels

# One-hot input x = e0 makes y = W[:, 0]: these scores, top classes by construction.
SCORES = [0.1, 0.5, 0.9, 0.3, 0.7, 0.2]
NAMES = ["cat", "dog", "Male speech, man speaking", "bird", "car", "rain"]
TOP5 = [2, 4, 1, 3, 5]


@pytest.fixture
def classifier(tmp_path):
    ct = pytest.importorskip("coremltools")
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    builder = NeuralNetworkBuilder([("x", datatypes.Array(4))], [("scores", datatypes.Array(6))])
    weights = np.zeros((6, 4), np.float32)
    weights[:, 0] = SCORES
    builder.add_inner_product("fc", W=weights, b=np.zeros(6, np.float32), input_channels=4,
                              output_channels=6, has_bias=True, input_name="x", output_name="scores")
    path = tmp_path / "model.mlmodel"
    ct.utils.save_spec(builder.spec, str(path))
    np.savez(tmp_path / "in.npz", x=np.array([1, 0, 0, 0], np.float32))
    return path, tmp_path / "in.npz"


def predict(capsys, *argv):
    code = cli.main(["predict"] + [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def top_rows(out):
    """(score, name) of each printed top-class line, in order."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("top 5"))
    rows = []
    for line in lines[start + 1:start + 6]:
        score, rest = line.strip().split("  ", 1)
        rows.append((float(score), rest.strip().rsplit(" [", 1)[0]))
    return rows


def test_labels_one_a_line_name_the_top_five_in_order(classifier, tmp_path, capsys):
    model, inputs = classifier
    (tmp_path / "names.txt").write_text("\n".join(NAMES) + "\n\n")
    code, out, err = predict(capsys, model, "--input", inputs, "--labels", tmp_path / "names.txt")
    assert code == 0, err
    assert top_rows(out) == [(pytest.approx(SCORES[i], rel=1e-6), NAMES[i]) for i in TOP5]
    assert "top 5 (labels from names.txt)" in out
    # statistics and first values instead of the shape alone
    # (the builder declares its output a double array, which the evaluator keeps)
    assert "shape [6] float64  min 0.1  max 0.9  mean 0.45  no inf/NaN" in out
    assert "values: 0.1, 0.5, 0.9, 0.3, 0.7, 0.2" in out


def test_a_csv_with_a_display_name_column_gives_the_same_names(classifier, tmp_path, capsys):
    model, inputs = classifier
    rows = ['index,mid,display_name'] + ['{},/m/{},"{}"'.format(i, i, n) for i, n in enumerate(NAMES)]
    (tmp_path / "classes.csv").write_text("\n".join(rows) + "\n")
    assert zoo_labels.read_labels(str(tmp_path / "classes.csv")) == NAMES
    (tmp_path / "plain.csv").write_text("name\n" + "\n".join(NAMES[:2]) + "\n")
    assert zoo_labels.read_labels(str(tmp_path / "plain.csv")) == NAMES[:2]
    code, out, _ = predict(capsys, model, "--input", inputs, "--labels", tmp_path / "classes.csv")
    assert code == 0 and top_rows(out)[0] == (pytest.approx(0.9), "Male speech, man speaking")


def test_labels_that_fit_no_output_say_so_and_bad_files_are_one_error(classifier, tmp_path, capsys):
    model, inputs = classifier
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    code, out, _ = predict(capsys, model, "--input", inputs, "--labels", tmp_path / "three.txt")
    assert code == 0 and "top 5" not in out
    assert "--labels: 3 names, and no output has a last axis of 3" in out
    (tmp_path / "empty.txt").write_text("\n\n")
    for bad in (tmp_path / "empty.txt", tmp_path / "absent.txt"):
        code, out, err = predict(capsys, model, "--input", inputs, "--labels", bad)
        assert code == 2 and out == ""
        assert len(err.strip().splitlines()) == 1 and "labels" in err


def test_a_panns_build_gets_audioset_names_and_other_models_none(tmp_path):
    for model, source in (("pann_mobilenetv1", "zoo"), ("logmel", "zoo"), ("pann_mobilenetv1", "file")):
        folder = tmp_path / model / source
        folder.mkdir(parents=True)
        (folder / "conversion.json").write_text(json.dumps(
            {"model": model, "route": "v9", "status": "ok", "source": {"kind": source, "spec": model}}))
    names, source = output_text.labels_for(None, str(tmp_path / "pann_mobilenetv1" / "zoo" / "model.mlpackage"))
    assert len(names) == 527 and names[0] == "Speech" and names[-1] == "Field recording"
    assert "AudioSet" in source and "CC BY-SA 4.0" in source
    assert output_text.labels_for(None, str(tmp_path / "logmel" / "zoo" / "m.mlpackage")) == (None, None)
    assert output_text.labels_for(None, str(tmp_path / "pann_mobilenetv1" / "file" / "m.pte")) == (None, None)
    # PANNs' frame_output [1, frames, 527]: each class ranked by its maximum over the frames
    frames = np.zeros((1, 3, 527), np.float32)
    frames[0, 2, 137], frames[0, 0, 0] = 0.8, 0.6
    rows, note = output_text.top_classes(frames, names, k=2)
    assert [(i, s) for i, _, s in rows] == [(137, pytest.approx(0.8)), (0, pytest.approx(0.6))]
    assert rows[1][1] == "Speech" and note == "each class's maximum over the 3 rows"


def test_inf_and_nan_are_counted_and_left_out_of_the_statistics():
    text = output_text.summary_line(np.array([[1.0, np.inf, np.nan, 3.0, -np.inf]], np.float32))
    assert text == ("shape [1, 5] float32  min 1  max 3  mean 2  2 inf, 1 NaN "
                    "(statistics over the 2 finite values)")
    assert output_text.summary_line(np.full(2, np.nan)).endswith("0 inf, 2 NaN (no finite value)")
