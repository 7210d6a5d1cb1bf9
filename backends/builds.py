"""The build folder contract, in one place: what a route's folder holds and how it is read.

    build/<model>/<route>[+<variant>]/
        <artifact>               the converted model (model.mlmodel, model.mlpackage,
                                 model.pte with partitions/<i>.mlpackage, model.aimodel)
        golden.npz               the inputs, and PyTorch's outputs for them: one case, or
                                 several (other inputs, other shapes), see ``write_cases``
        conversion.json          the ConversionRecord: status, stage, error, timings, facts
        conversion.failed.json   a later failed run, kept beside an earlier good one

Every process that writes or reads these files goes through this module: the route envs'
workers (Python 3.7 for v3), the host's pipeline, bench and predict. Array files (golden,
the inputs a host hands a worker) key arrays as ``input:<name>`` / ``output:<name>``.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from typing import Optional

GOLDEN = "golden.npz"
RECORD = "conversion.json"
FAILED_RECORD = "conversion.failed.json"
PROGRESS = ".stage"            # the stage a worker is in, for a parent when it dies
PARTITIONS = "partitions"      # et: the Core ML partitions of model.pte, as <i>.mlpackage

INPUT, OUTPUT = "input:", "output:"
OK, FAILED = "ok", "failed"

SCHEMA = 1


# --- paths ----------------------------------------------------------------------------------

VARIANT_SEP = "+"


def folder_name(route, variant=None):
    """``v9`` for a route's default artifact, ``v9+lut4`` for one of its variants."""
    return route if not variant else "{}{}{}".format(route, VARIANT_SEP, variant)


def split_folder_name(name):
    """``v9+lut4`` -> ("v9", "lut4"); ``v9`` -> ("v9", None)."""
    route, _, variant = name.partition(VARIANT_SEP)
    return route, (variant or None)


def route_dir(out_root, model, route, variant=None):
    return os.path.join(out_root, model, folder_name(route, variant))


def golden_path(folder):
    return os.path.join(folder, GOLDEN)


def record_path(folder):
    return os.path.join(folder, RECORD)


def partition_paths(folder):
    """The extracted Core ML partitions of an ExecuTorch program, in delegate order."""
    where = os.path.join(folder, PARTITIONS)
    try:
        names = [n for n in os.listdir(where) if n.endswith(".mlpackage")]
    except OSError:
        return []
    return [os.path.join(where, n) for n in sorted(names, key=lambda n: int(n.split(".")[0]))]


# --- arrays: golden.npz and the inputs files ------------------------------------------------

def write_arrays(path, inputs, outputs=None, **plain):
    """One npz of ``inputs`` (and ``outputs``), each {name: array}, in the keyed form;
    ``plain`` arrays (e.g. a version string) keep their own names."""
    import numpy as np
    arrays = OrderedDict((INPUT + k, v) for k, v in inputs.items())
    arrays.update((OUTPUT + k, v) for k, v in (outputs or {}).items())
    arrays.update(plain)
    np.savez(path, **arrays)


def read_arrays(path, plain_are_inputs=False):
    """(inputs, outputs) from an npz written by ``write_arrays`` (of golden.npz: its first
    case), each an OrderedDict in the file's order. ``plain_are_inputs``: keys without a
    prefix (a user's own file) are inputs."""
    import numpy as np
    inputs, outputs = OrderedDict(), OrderedDict()
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            if key == CASES_KEY or CASE_SEP in key:
                continue
            if key.startswith(OUTPUT):
                outputs[key[len(OUTPUT):]] = data[key]
            elif key.startswith(INPUT):
                inputs[key[len(INPUT):]] = data[key]
            elif plain_are_inputs:
                inputs[key] = data[key]
    return inputs, outputs


def write_golden(folder, inputs, outputs):
    write_arrays(golden_path(folder), inputs, outputs)


def read_golden(folder):
    """golden.npz -> (inputs, outputs) of its first case, each {name: array} in the order
    written."""
    return read_arrays(golden_path(folder))


# Several cases in one golden.npz: the first keeps the plain keys (so every reader of one
# case reads it), the others are keyed ``<label>/input:<name>`` / ``<label>/output:<name>``,
# and ``cases`` lists the labels in order. A case is a different input (a quiet clip, a
# user's second --inputs file) or a different shape of a flexible input.
CASES_KEY, CASE_SEP = "cases", "/"
DEFAULT_CASE = "example"


class Case(object):
    def __init__(self, label, inputs, outputs):
        self.label = label        # e.g. "example", "quiet", "waveform=1x16000"
        self.inputs = inputs      # OrderedDict name -> array
        self.outputs = outputs    # OrderedDict name -> array

    def __repr__(self):
        return "Case({!r})".format(self.label)


def write_cases(folder, cases):
    """golden.npz holding ``cases`` (a list of Case, at least one) in order."""
    write_cases_file(golden_path(folder), cases)


def read_cases(folder):
    """Every case of golden.npz, in order (a file of one case, as older builds have, gives
    one case labelled "example")."""
    return read_cases_file(golden_path(folder))


def write_cases_file(path, cases):
    """An npz of ``cases`` in the golden layout: golden.npz, or the inputs a host hands a
    route's worker (cases with no outputs, or with onnxruntime's for an ONNX file)."""
    import numpy as np
    labels = [c.label for c in cases]
    if not cases or len(set(labels)) != len(labels) or any(CASE_SEP in l for l in labels):
        raise ValueError("cases need distinct labels without {!r}: {}".format(CASE_SEP, labels))
    first, rest = cases[0], cases[1:]
    arrays = OrderedDict((INPUT + k, v) for k, v in first.inputs.items())
    arrays.update((OUTPUT + k, v) for k, v in first.outputs.items())
    for case in rest:
        arrays.update((case.label + CASE_SEP + INPUT + k, v) for k, v in case.inputs.items())
        arrays.update((case.label + CASE_SEP + OUTPUT + k, v) for k, v in case.outputs.items())
    if rest or first.label != DEFAULT_CASE:   # else the one-case layout every reader knows
        arrays[CASES_KEY] = np.array(labels)
    np.savez(path, **arrays)


def read_cases_file(path):
    import numpy as np
    with np.load(path, allow_pickle=False) as data:
        labels = [str(l) for l in data[CASES_KEY]] if CASES_KEY in data.files else [DEFAULT_CASE]
        found = OrderedDict((l, (OrderedDict(), OrderedDict())) for l in labels)
        for key in data.files:
            label, sep, rest = key.partition(CASE_SEP)
            label, rest = (label, rest) if sep else (labels[0], key)
            if label not in found:
                continue
            if rest.startswith(INPUT):
                found[label][0][rest[len(INPUT):]] = data[key]
            elif rest.startswith(OUTPUT):
                found[label][1][rest[len(OUTPUT):]] = data[key]
    return [Case(label, ins, outs) for label, (ins, outs) in found.items()]


# The input shapes a host asked for (``backends.shapes``: fixed, ranges, enumerated), as a
# small JSON beside the inputs file it hands a worker: ``inputs.npz`` -> ``inputs.shapes.json``.
SHAPES_SUFFIX = ".shapes.json"


def input_shapes_path(inputs_npz):
    return os.path.splitext(inputs_npz)[0] + SHAPES_SUFFIX


def write_input_shapes(inputs_npz, shapes):
    """``shapes``: {input name: backends.shapes.FlexShape} (keys sorted in the file: readers
    take the order from the inputs)."""
    from backends.shapes import shapes_to_json
    write_json_atomic(input_shapes_path(inputs_npz), shapes_to_json(shapes))


def read_input_shapes(inputs_npz):
    """{input name: FlexShape} the host wrote beside ``inputs_npz``, or None (every input
    fixed at its example's shape)."""
    from backends.shapes import shapes_from_json
    if not inputs_npz:
        return None
    data = read_json(input_shapes_path(inputs_npz))
    return shapes_from_json(data) if isinstance(data, dict) else None


# --- conversion.json ------------------------------------------------------------------------

@dataclass
class ConversionRecord:
    """What one conversion left: the facts every route records as fields; whatever else a
    route or a later step adds (op counts, partitions, ``executorch``...) in ``extra``.
    Keys a reader does not know are kept, so older and newer files both round-trip. Reads as
    a mapping too (``record["status"]``, ``record.get("error")``) for code that reports it."""
    route: Optional[str] = None
    model: Optional[str] = None
    status: str = FAILED
    stage: Optional[str] = None        # the stage that failed (None when ok)
    error: Optional[str] = None
    artifact: Optional[str] = None     # file name of the model in the folder
    variant: Optional[str] = None
    source: Optional[dict] = None      # {"kind", "spec"}
    samples: Optional[int] = None
    weights: Optional[str] = None
    hooks: Optional[str] = None
    submodule: Optional[str] = None
    seconds: dict = field(default_factory=dict)       # stage -> seconds
    toolchain: Optional[dict] = None                  # package -> version
    golden_source: Optional[str] = None
    spec_type: Optional[str] = None
    spec_version: Optional[int] = None
    file_bytes: Optional[int] = None
    compute_precision: Optional[str] = None
    compute_units: Optional[list] = None
    verified: Optional[dict] = None
    torch_drift: Optional[dict] = None
    schema: int = SCHEMA
    extra: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.status == OK

    @classmethod
    def from_json(cls, data):
        known = set(_field_names()) - {"extra"}
        record = cls(**dict((k, v) for k, v in data.items() if k in known))
        record.extra = dict((k, v) for k, v in data.items() if k not in known)
        return record

    def to_json(self):
        data = dict((k, getattr(self, k)) for k in _field_names()
                    if k != "extra" and (k in _ALWAYS or getattr(self, k) is not None))
        data.update(self.extra)
        return data

    # The mapping view.
    def __getitem__(self, key):
        if key in _field_names() and key != "extra":
            return getattr(self, key)
        return self.extra[key]

    def __setitem__(self, key, value):
        if key in _field_names() and key != "extra":
            setattr(self, key, value)
        else:
            self.extra[key] = value

    def __contains__(self, key):
        return key in self.extra or (key in _field_names() and getattr(self, key) is not None)

    def get(self, key, default=None):
        try:
            value = self[key]
        except KeyError:
            return default
        return default if value is None else value

    def setdefault(self, key, value):
        if self.get(key) is None:
            self[key] = value
        return self[key]

    def update(self, facts):
        for key, value in dict(facts).items():
            self[key] = value


_ALWAYS = ("schema", "route", "model", "status", "stage", "error")


def _field_names():
    return [f.name for f in fields(ConversionRecord)]


def as_record(data):
    """A ConversionRecord from a record or a plain dict (e.g. a test's, or compare's row)."""
    return data if isinstance(data, ConversionRecord) else ConversionRecord.from_json(data or {})


def write_record(folder, record, name=RECORD):
    """conversion.json (or ``name``) so that a reader sees the old file or the new one."""
    write_json_atomic(os.path.join(folder, name), as_record(record).to_json())


def read_record(folder, name=RECORD):
    """The ConversionRecord in ``folder``, or None when there is none or it is unreadable."""
    data = read_json(os.path.join(folder, name))
    return ConversionRecord.from_json(data) if isinstance(data, dict) else None


def load_record(folder):
    """As ``read_record``, raising ValueError / OSError with the reason when it cannot."""
    with open(record_path(folder)) as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return ConversionRecord.from_json(data)


# --- atomic files ---------------------------------------------------------------------------

def write_json_atomic(path, data):
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path, text):
    """Write ``text`` so that a reader sees the old file or the new one, never half of one."""
    tmp = "{}.tmp-{}".format(path, os.getpid())
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (IOError, OSError, ValueError):
        return default


# --- stateful models: golden over successive calls ------------------------------------------
# A stateful model's golden.npz holds one case whose every input and output carries a leading
# axis of length ``steps``: slice i is call i of one fresh model (buffers zeroed first). The
# record says so: ``record["steps"]`` (an int), with ``record["states"]`` naming the buffers.

def steps_of(record):
    """The number of successive calls golden.npz holds per case, or None (one call each)."""
    steps = as_record(record).get("steps")
    return int(steps) if steps else None


def split_steps(arrays, steps):
    """{name: array with a leading axis of ``steps``} -> [{name: slice i}] of ``steps`` dicts."""
    for name, value in arrays.items():
        if len(value.shape) == 0 or value.shape[0] != steps:
            raise ValueError("{} has shape {}: a leading axis of {} steps was expected".format(
                name, list(value.shape), steps))
    return [OrderedDict((k, v[i]) for k, v in arrays.items()) for i in range(steps)]


def stack_steps(per_step):
    """[{name: array}] (one dict per call) -> {name: stacked array}, the steps axis first."""
    import numpy as np
    return OrderedDict((k, np.stack([step[k] for step in per_step])) for k in per_step[0])
