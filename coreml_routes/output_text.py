"""How ``coreml-routes predict`` prints an output: shape and dtype, summary statistics
(min / max / mean of the finite values, inf and NaN counts), the first few values, and for a
classifier-like output (its last axis as long as the label list) the top classes by name."""
from __future__ import annotations

import os

FIRST_VALUES = 6
TOP_K = 5


def summary_line(value):
    """'shape [1, 527] float32  min 0.01  max 0.98  mean 0.43  no inf/NaN'."""
    import numpy as np
    value = np.asarray(value)
    text = "shape {} {}".format(list(value.shape), value.dtype)
    if value.size == 0:
        return text + "  (empty)"
    if value.dtype.kind not in "biuf":
        return text
    numbers = value.astype(np.float64)
    finite = numbers[np.isfinite(numbers)]
    if finite.size:
        text += "  min {}  max {}  mean {}".format(_num(finite.min()), _num(finite.max()),
                                                   _num(finite.mean()))
    inf = int(np.count_nonzero(np.isinf(numbers)))
    nan = int(np.count_nonzero(np.isnan(numbers)))
    if inf or nan:
        text += "  {} inf, {} NaN{}".format(inf, nan, " (statistics over the {} finite values)".format(
            finite.size) if finite.size else " (no finite value)")
    else:
        text += "  no inf/NaN"
    return text


def first_values(value, count=FIRST_VALUES):
    """'values: 0.1, 0.2, ... (527 in all)': the first ``count`` in memory order."""
    import numpy as np
    flat = np.asarray(value).reshape(-1)
    shown = ", ".join(_num(x) for x in flat[:count])
    return "values: {}{}".format(shown, ", … ({} in all)".format(flat.size) if flat.size > count else "")


def _num(x):
    import numpy as np
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    x = float(x)
    return "{:.4g}".format(x)


def is_classifier_like(value, labels):
    import numpy as np
    shape = np.shape(value)
    return labels is not None and len(shape) >= 1 and shape[-1] == len(labels) and \
        np.asarray(value).dtype.kind in "biuf"


def top_classes(value, labels, k=TOP_K):
    """-> (rows, note): the ``k`` best (index, name, score) over the last axis; an output with
    several rows (frames) is ranked by each class's maximum over them, as ``note`` says."""
    import numpy as np
    scores = np.asarray(value, dtype=np.float64).reshape(-1, len(labels))
    note = None
    if scores.shape[0] > 1:
        note = "each class's maximum over the {} rows".format(scores.shape[0])
        scores = np.nanmax(np.where(np.isnan(scores), -np.inf, scores), axis=0, keepdims=True)
    row = np.where(np.isnan(scores[0]), -np.inf, scores[0])
    order = np.argsort(-row, kind="stable")[:k]
    return [(int(i), labels[int(i)], float(scores[0][i])) for i in order], note


def top_lines(value, labels, source, k=TOP_K, indent=""):
    rows, note = top_classes(value, labels, k)
    head = "top {} ({}{}):".format(len(rows), source, "; " + note if note else "")
    return [indent + head] + ["{}  {:>10}  {} [{}]".format(indent, _num(score), name, index)
                              for index, name, score in rows]


def labels_for(path, model_path):
    """(names, source) for ``--labels path``; else the label set of the zoo model whose
    conversion record sits beside ``model_path`` (the PANNs taggers: AudioSet); else
    (None, None)."""
    if path:
        from zoo.labels import read_labels
        return read_labels(path), "labels from {}".format(os.path.basename(path))
    import zoo
    from backends.builds import read_record
    from zoo.labels import named_set
    record = read_record(os.path.dirname(os.path.abspath(model_path)))
    if record is None or (record.source or {}).get("kind", "zoo") != "zoo":
        return None, None
    entry = zoo.MODELS.get(record.model or "")
    if entry is None or not entry.labels:
        return None, None
    return named_set(entry.labels)
