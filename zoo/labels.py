"""Class names for classifier-like outputs: the AudioSet names the PANNs taggers score, and
label files users bring (``coreml-routes predict --labels``).

``data/audioset_labels.csv`` is the AudioSet ontology's 527 class names (CC BY-SA 4.0, by
Google), as listed in the PANNs repository's ``metadata/class_labels_indices.csv``
(qiuqiangkong/audioset_tagging_cnn); see ``data/README.md``."""
from __future__ import annotations

import csv
import io
import os

from bad_input import BadInput

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
AUDIOSET = "audioset"
SETS = {AUDIOSET: (os.path.join(DATA, "audioset_labels.csv"),
                   "AudioSet class names, CC BY-SA 4.0")}
NAME_COLUMNS = ("display_name", "name")   # a CSV's header names its label column so


class LabelsError(BadInput):
    """A label file that cannot be read as a list of names."""


def named_set(name):
    """(names, description) of a label set shipped with the zoo."""
    path, description = SETS[name]
    return read_labels(path), description


def read_labels(path):
    """Names in order from ``path``: a CSV whose header has a ``display_name`` or ``name``
    column (that column; ``display_name`` first), else one name a line (blank lines
    skipped, surrounding spaces dropped)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise LabelsError("cannot read labels {}: {}".format(path, getattr(e, "strerror", None) or e))
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    column = next((c for c in NAME_COLUMNS if c in header), None)
    if column is not None and len(header) > 1:
        rows = list(csv.reader(io.StringIO(text)))
        at = header.index(column)
        names = []
        for number, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if at >= len(row):
                raise LabelsError("labels {}: line {} has no {!r} column".format(path, number, column))
            names.append(row[at].strip())
    else:
        names = [line.strip() for line in lines if line.strip()]
        if names and names[0].lower() in NAME_COLUMNS:   # a one-column file with its header
            names = names[1:]
    if not names:
        raise LabelsError("labels {}: no names in it (give one a line, or a CSV with a "
                          "'name' or 'display_name' column)".format(path))
    return names
