"""``--model`` and the input flags every command shares: what the user asks to convert.

A zoo name keeps ``--samples``; the user's own model (``FILE.py:FUNCTION``,
``package.module:FUNCTION``, a TorchScript ``.pt``/``.ts`` or an ``.onnx`` file) takes
``--input NAME:SHAPE[:DTYPE]`` (repeatable) or ``--inputs FILE.npz``. ``resolve`` checks it
all here, before any route runs, and writes the inputs and weights every route receives.
"""
from __future__ import annotations

import os
import re
import shlex
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import List, Optional

from coreml_routes.errors import UserError

DTYPES = ("float32", "float16", "int32", "int64")
DEFAULT_INT_RANGE = (0, 100)
DEFAULT_RANGE = (-1.0, 1.0)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

MODEL_HELP = ("a zoo model (listed below), FILE.py:FUNCTION or package.module:FUNCTION "
              "(FUNCTION() returns an nn.Module), a TorchScript archive (.pt/.ts) or an .onnx file")


def add_arguments(p, samples=True):
    p.add_argument("--model", required=True, metavar="M", help=MODEL_HELP)
    p.add_argument("--checkpoint", metavar="PATH",
                   help="weights: a state dict, {'state_dict': ...} or {'model': ...} (e.g. an "
                        "official PANNs checkpoint); keys and shapes must match exactly. Read with "
                        "torch's weights_only unpickler. Default: seeded weights")
    if samples:
        p.add_argument("--samples", default=32000, metavar="N",
                       help="zoo models: example waveform length in samples (32 kHz; default "
                            "32000 = 1 s). The converted model takes exactly this input shape, "
                            "or any length in a range LO..HI (e.g. 16000..64000), or one of "
                            "lengths A,B,C (e.g. 16000,32000,64000): flexible, verified at "
                            "each end and inside / at every length")
    p.add_argument("--input", action="append", default=[], metavar="NAME:SHAPE[:DTYPE]",
                   help="your model's input, repeatable, in forward() order: e.g. "
                        "x:1x3x224x224 or tokens:1x16:int64 (DTYPE: {}; default float32). "
                        "Checked on three seeded cases: normal(0, 1) floats, full-scale floats "
                        "uniform in --range, and the same at 1e-3 of it (quiet); integers "
                        "in --int-range".format(", ".join(DTYPES)))
    p.add_argument("--inputs", action="append", default=[], metavar="FILE.npz",
                   help="your model's inputs as arrays keyed by input name (instead of --input), "
                        "repeatable: each file is a case, and a route matches only if every "
                        "case does")
    p.add_argument("--range", metavar="LO,HI",
                   help="the full scale of your float inputs for the loud and quiet cases "
                        "(default -1,1: audio samples)")
    p.add_argument("--int-range", metavar="LO,HI",
                   help="integer example inputs uniform in [LO, HI) (default 0,100; e.g. your "
                        "vocabulary size for token ids)")
    p.add_argument("--output", action="append", default=[], metavar="NAME",
                   help="name of an output, repeatable, in order (default output_0, output_1, ...; "
                        "tuple, list and dict outputs are flattened in order)")
    p.add_argument("--name", metavar="ID",
                   help="model id: files go to DIR/<ID>/<route>/ (default: the zoo name, "
                        "<file>-<function>, or the file's stem)")
    from coreml_routes import steps_args
    steps_args.add_argument(p)
    p.add_argument("--requirements", metavar="FILE",
                   help="packages your model file needs beyond torch and numpy (pip requirements); "
                        "installed per route into an overlay env, never into the pinned one")


@dataclass
class ModelRequest:
    """One model as every route receives it."""
    source: object                      # backends.sources.Source
    name: str                           # model id: build/<name>/<route>/
    samples: int = 32000
    inputs_npz: Optional[str] = None    # input:<name> arrays (+ output:<name> for ONNX)
    outputs: Optional[List[str]] = None
    weights_npz: Optional[str] = None
    weights: str = "seeded"             # what weights the routes get, in words
    requirements: Optional[str] = None
    flags: List[str] = field(default_factory=list)   # to repeat the request (diagnose line)
    input_note: str = ""                # which input the routes get, in words
    worker_args: List[str] = field(default_factory=list)   # e.g. --steps (coreml_routes.steps_args)

    @property
    def is_zoo(self):
        from backends.sources import ZOO
        return self.source.kind == ZOO

    def command(self, verb, route):
        return " ".join(["coreml-routes", verb, "--route", route] + [shlex.quote(f) for f in self.flags])


def resolve(args, tmp):
    """Check the request and write what the routes receive into ``tmp``: ModelRequest."""
    from backends import sources
    source = sources.parse(args.model)
    from coreml_routes import model_file
    model_file.check(source)   # FILE.py without :FUNCTION, or a function it does not define
    samples = getattr(args, "samples", 32000)
    flags = ["--model", args.model]
    if source.kind == sources.ZOO:
        request = _zoo_request(args, source, samples, flags, tmp)
    else:
        request = _user_request(args, source, tmp, flags)
    if args.checkpoint:
        request.weights_npz = _checkpoint(args.checkpoint, request, tmp)
        request.weights = "checkpoint {}".format(os.path.basename(args.checkpoint))
        flags += ["--checkpoint", args.checkpoint]
    if args.requirements:
        if request.is_zoo:
            raise UserError("--requirements is for your own model files; zoo models need none")
        if not os.path.isfile(args.requirements):
            raise UserError("requirements file not found: {}".format(args.requirements))
        request.requirements = os.path.abspath(args.requirements)
        flags += ["--requirements", args.requirements]
    from coreml_routes import steps_args
    int_range = parse_int_range(args.int_range) if getattr(args, "int_range", None) else DEFAULT_INT_RANGE
    return steps_args.apply(args, request, tmp, int_range)


def _zoo_request(args, source, samples, flags, tmp):
    import zoo
    own = [f for f, given in (("--input", args.input), ("--output", args.output),
                              ("--int-range", args.int_range)) if given]
    if own:
        raise UserError("{} is for your own models; zoo model {} takes --samples (or --inputs "
                        "FILE.npz)".format(own[0], source.spec))
    entry = zoo.get(source.spec)
    samples = _samples_arg(samples)
    lengths = samples if is_flexible(samples) else None
    if lengths is not None:
        if args.inputs:
            raise UserError("--samples {} (flexible) makes the inputs itself; give --inputs with a "
                            "fixed --samples".format(lengths.spec_text()))
        samples = lengths.default_shape()[0]
    entry.check_samples(min(lengths.case_shapes())[0] if lengths is not None else samples)
    name = _checked_name(args.name or source.spec)
    if lengths is not None:
        flags += ["--samples", lengths.spec_text()]
    elif samples != 32000:
        flags += ["--samples", str(samples)]
    request = ModelRequest(source, name, samples=samples, flags=flags,
                           input_note="the zoo's inputs ({} samples): {}".format(
                               samples, ", ".join(entry.example_cases(samples))))
    if lengths is not None:
        request.inputs_npz = _zoo_length_cases(entry, lengths, tmp)
        request.input_note = "the zoo's inputs at --samples {} ({})".format(
            lengths.spec_text(), ", ".join(c for c in _case_labels(request.inputs_npz)))
    if args.inputs:   # e.g. a stress input: the zoo model fed the user's arrays
        cases = files_as_cases(args.inputs)
        for path, case in zip(args.inputs, cases):
            if sorted(case.inputs) != sorted(entry.inputs):
                raise UserError("--inputs {}: {} takes {}, the file holds {}".format(
                    path, entry.name, ", ".join(entry.inputs), ", ".join(case.inputs)))
            case.inputs = OrderedDict((k, case.inputs[k]) for k in entry.inputs)
        request.inputs_npz = _write_cases(tmp, cases)
        request.input_note = "--inputs " + " --inputs ".join(args.inputs)
        flags += [f for path in args.inputs for f in ("--inputs", path)]
    return request


def _samples_arg(text):
    """--samples: N, or a flexible length LO..HI / A,B,C (a ``backends.shapes.FlexShape`` of
    one dim); one error line when malformed."""
    from backends.shapes import FlexShape, ShapeSpecError
    if "x" in str(text):
        raise UserError("--samples {!r}: a length N, a range LO..HI or lengths A,B,C".format(text))
    try:
        shape = FlexShape.parse(str(text))
    except ShapeSpecError as e:
        raise UserError("--samples {!r}: expected a length N, a range LO..HI or lengths A,B,C: "
                        "{}".format(text, e))
    return shape if shape.is_flexible else shape.dims[0]


def _zoo_length_cases(entry, lengths, tmp):
    """The inputs file of a zoo model at flexible lengths: its example at each length of
    ``case_plan`` (labelled ``waveform=1x16000``), then its other cases (quiet, tone) at
    the default length; the flexible shape beside it for the routes."""
    from backends.builds import Case
    from backends.shapes import FlexShape, case_plan
    if list(entry.inputs) != ["waveform"]:
        raise UserError("--samples {} (flexible) is for the zoo's waveform models; {} takes "
                        "{}".format(lengths.spec_text(), entry.name, ", ".join(entry.inputs)))
    default = lengths.default_shape()[0]
    fixed = list(entry.inputs["waveform"](default))
    shapes = OrderedDict(waveform=FlexShape(fixed[:-1] + [lengths.dims[0]]))
    cases = [Case(label, OrderedDict(entry.example_inputs(concrete["waveform"][-1])), OrderedDict())
             for label, concrete in case_plan(shapes)]
    cases += [Case(label, OrderedDict(inputs), OrderedDict())
              for label, inputs in entry.example_cases(default).items() if label != "example"]
    path = _write_cases(tmp, cases)
    from backends.builds import write_input_shapes
    write_input_shapes(path, shapes)
    return path


def _case_labels(inputs_npz):
    from backends.builds import read_cases_file
    return [c.label for c in read_cases_file(inputs_npz)]


def files_as_cases(paths):
    """One case per --inputs file, labelled by the file's stem (made distinct)."""
    from backends.builds import Case
    cases, labels = [], set()
    for path in paths:
        label = base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.splitext(os.path.basename(path))[0]) or "inputs"
        n = 2
        while label in labels:
            label, n = "{}-{}".format(base, n), n + 1
        labels.add(label)
        cases.append(Case(label, read_inputs_npz(path), OrderedDict()))
    return cases


def _write_cases(tmp, cases):
    from backends.builds import write_cases_file   # here: `coreml-routes --help` stays fast
    path = os.path.join(tmp, "inputs.npz")
    write_cases_file(path, cases)
    return path


def _user_request(args, source, tmp, flags):
    from backends.sources import ONNX
    if not os.path.exists(source.path) and (source.kind != "factory" or source.path.endswith(".py")):
        raise UserError("model file not found: {}".format(source.path))
    if os.path.isdir(source.path):
        raise UserError("model file {} is a directory".format(source.path))
    if source.kind != ONNX and not args.input and not args.inputs:
        raise UserError("{} needs its inputs: --input NAME:SHAPE[:DTYPE] (e.g. --input "
                        "x:1x3x224x224) or --inputs FILE.npz".format(args.model))
    if args.input and args.inputs:
        raise UserError("give --input or --inputs, not both")
    int_range = parse_int_range(args.int_range) if args.int_range else DEFAULT_INT_RANGE
    full_scale = parse_range(args.range) if getattr(args, "range", None) else DEFAULT_RANGE
    if args.inputs:
        cases = files_as_cases(args.inputs)
        flags += [f for path in args.inputs for f in ("--inputs", path)]
    elif args.input:
        cases = example_cases([parse_input_spec(s) for s in args.input], int_range, full_scale)
        flags += [f for s in args.input for f in ("--input", s)]
        if args.int_range:
            flags += ["--int-range", args.int_range]
        if getattr(args, "range", None):
            flags += ["--range", args.range]
    else:
        cases = None   # an ONNX file with fixed input shapes says them itself
    outputs = [_checked_output(o) for o in args.output] or None
    flags += [f for o in args.output for f in ("--output", o)]
    name = _checked_name(args.name or source.default_name)
    if args.name:
        flags += ["--name", args.name]
    source.path = os.path.abspath(source.path) if source.path.endswith(
        (".py", ".pt", ".ts", ".onnx")) else source.path
    if source.kind == ONNX:
        from coreml_routes import onnx_inputs
        if cases is None:
            cases = example_cases(onnx_inputs.declared_specs(source.path), int_range, full_scale)
        for case in cases:   # onnxruntime stands in for PyTorch, case by case
            case.inputs, golden = onnx_inputs.golden(source.path, case.inputs)
            outputs = outputs or list(golden)
            case.outputs = _named_golden(golden, outputs)
    path = _write_cases(tmp, cases)
    _write_input_shapes(path, args.input)
    note = ("--inputs " + " --inputs ".join(args.inputs) if args.inputs else
            "--input " + " --input ".join(args.input) if args.input else "from the ONNX file's shapes")
    note += " ({} cases: {})".format(len(cases), ", ".join(c.label for c in cases)) if len(cases) > 1 else ""
    return ModelRequest(source, name, inputs_npz=path, outputs=outputs, flags=flags, input_note=note)


def _write_input_shapes(inputs_npz, specs):
    """Flexible --input shapes go to the routes beside the inputs file (``backends.builds``)."""
    shapes = input_shapes([parse_input_spec(s) for s in specs]) if specs else None
    if shapes:
        from backends.builds import write_input_shapes
        write_input_shapes(inputs_npz, shapes)


def _named_golden(golden, outputs):
    """onnxruntime's outputs under the names the user gave them."""
    if len(outputs) != len(golden):
        raise UserError("the ONNX file has {} outputs ({}), --output names {}".format(
            len(golden), ", ".join(golden), len(outputs)))
    return OrderedDict(zip(outputs, golden.values()))


def parse_input_spec(spec):
    """``NAME:SHAPE[:DTYPE]`` -> (name, shape tuple, dtype name)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise UserError("--input {!r}: expected NAME:SHAPE[:DTYPE], e.g. x:1x3x224x224 or "
                        "tokens:1x16:int64".format(spec))
    name, shape_text = parts[0], parts[1]
    dtype = parts[2] if len(parts) == 3 else "float32"
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise UserError("--input {!r}: name {!r} must be letters, digits and _".format(spec, name))
    shape = _parsed_shape(spec, shape_text)
    if dtype not in DTYPES:
        raise UserError("--input {!r}: DTYPE {!r} is not one of {}".format(spec, dtype, ", ".join(DTYPES)))
    return name, shape, dtype


def _parsed_shape(spec, shape_text):
    """A fixed shape as a tuple of ints; a flexible one (range ``LO..HI`` / enumerated
    ``A,B,C`` dims) as a ``backends.shapes.FlexShape``."""
    from backends.shapes import FlexShape, ShapeSpecError
    try:
        shape = FlexShape.parse(shape_text)
    except ShapeSpecError as e:
        raise UserError("--input {!r}: SHAPE {!r} must be positive sizes joined by x, each a size, "
                        "a range LO..HI or sizes A,B,C (e.g. 1x3x224x224, 1x16000..64000, "
                        "1,8,16x1024): {}".format(spec, shape_text, e))
    return shape if shape.is_flexible else tuple(shape.dims)


def parse_int_range(text):
    try:
        lo, hi = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError("--int-range {!r}: expected LO,HI (integers), e.g. 0,30522".format(text))
    if lo >= hi:
        raise UserError("--int-range {!r}: LO must be below HI".format(text))
    return lo, hi


def parse_range(text):
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError("--range {!r}: expected LO,HI (numbers), e.g. -1,1".format(text))
    if not lo < hi:
        raise UserError("--range {!r}: LO must be below HI".format(text))
    return lo, hi


QUIET = 1e-3   # the quiet case: this fraction of full scale (-60 dB)


def example_cases(specs, int_range=DEFAULT_INT_RANGE, full_scale=None):
    """The cases a shape-only model is checked on: ``example`` (normal(0, 1) floats), and
    when it has float inputs ``full-scale`` (uniform over ``full_scale``) and ``quiet`` (the
    same at 1e-3): a log or a division that is fine on the example can break on either.
    Integer inputs are the example's in every case."""
    from backends.builds import Case
    import numpy as np
    if any(is_flexible(shape) for _, shape, _ in specs):
        return flexible_cases(specs, int_range, full_scale)
    example = example_inputs(specs, int_range)
    cases = [Case("example", example, OrderedDict())]
    floats = [name for name, _, dtype in specs if not dtype.startswith("int")]
    if floats:
        lo, hi = full_scale or DEFAULT_RANGE
        rng = np.random.RandomState(1)
        loud = OrderedDict((k, rng.uniform(lo, hi, v.shape).astype(v.dtype) if k in floats else v)
                           for k, v in example.items())
        quiet = OrderedDict((k, (v * QUIET).astype(v.dtype) if k in floats else v)
                            for k, v in loud.items())
        cases += [Case("full-scale", loud, OrderedDict()), Case("quiet", quiet, OrderedDict())]
    return cases


def is_flexible(shape):
    """A parsed shape (or --samples) that is a ``backends.shapes.FlexShape``, not fixed."""
    return getattr(shape, "is_flexible", False)


def input_shapes(specs):
    """{name: FlexShape} of parsed --input specs (fixed ones too), or None when all are fixed."""
    from backends.shapes import FlexShape
    if not any(is_flexible(shape) for _, shape, _ in specs):
        return None
    return OrderedDict((name, shape if is_flexible(shape) else FlexShape.fixed(shape))
                       for name, shape, _ in specs)


def flexible_cases(specs, int_range=DEFAULT_INT_RANGE, full_scale=None):
    """The cases of a model with flexible inputs (``backends.shapes.case_plan``): seeded
    normal(0, 1) values at each shape (labelled by it, e.g. ``x=1x8x1024``, the default shape
    first), then the full-scale and quiet cases at the default shape."""
    from backends.builds import Case
    from backends.shapes import case_plan
    shapes = input_shapes(specs)
    cases = []
    for label, concrete in case_plan(shapes):
        at = [(name, concrete[name], dtype) for name, _, dtype in specs]
        cases.append(Case(label, example_inputs(at, int_range), OrderedDict()))
    default = [(name, shapes[name].default_shape(), dtype) for name, _, dtype in specs]
    extra = [c for c in example_cases(default, int_range, full_scale) if c.label != "example"]
    return cases + extra


def example_inputs(specs, int_range=DEFAULT_INT_RANGE):
    """Deterministic example inputs: seeded normal(0, 1) floats, integers uniform in
    [lo, hi) — the same on every run and for every route."""
    names = [name for name, _, _ in specs]
    duplicated = sorted(set(n for n in names if names.count(n) > 1))
    if duplicated:
        raise UserError("--input {!r} is given twice".format(duplicated[0]))
    import numpy as np
    rng = np.random.RandomState(0)
    arrays = {}
    for name, shape, dtype in specs:
        if dtype.startswith("int"):
            arrays[name] = rng.randint(int_range[0], int_range[1], size=shape).astype(dtype)
        else:
            arrays[name] = rng.standard_normal(shape).astype(dtype)
    return arrays


def read_inputs_npz(path):
    if not os.path.isfile(path):
        raise UserError("--inputs file not found: {}".format(path))
    from backends.builds import read_arrays
    try:
        arrays, _ = read_arrays(path, plain_are_inputs=True)
    except Exception as e:  # noqa: BLE001 — not a zip, pickled objects, truncated ...
        raise UserError("--inputs {}: not a readable .npz of arrays ({})".format(path, e))
    if not arrays:
        raise UserError("--inputs {} holds no arrays".format(path))
    for name, value in arrays.items():
        if value.dtype.name not in DTYPES:
            raise UserError("--inputs {}: {!r} has dtype {}; inputs take {}".format(
                path, name, value.dtype.name, ", ".join(DTYPES)))
    return arrays


def _checked_output(name):
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise UserError("--output {!r}: a name is letters, digits and _".format(name))
    return name


def _checked_name(name):
    if not _NAME.match(name):
        raise UserError("model id {!r} cannot name a folder: use letters, digits, '.', '_' "
                        "and '-' (set it with --name)".format(name))
    return name


def _checkpoint(path, request, tmp):
    """Read the checkpoint safely and hand it on as plain arrays; for zoo models check its
    keys and shapes here, to name the user's file rather than our copy."""
    import zoo
    from coreml_routes.checkpoint import load_state_arrays, save_npz
    arrays = load_state_arrays(path)
    if request.is_zoo:
        zoo.load_weights(zoo.get(request.source.spec).build(), arrays, where=path)
    out = os.path.join(tmp, "weights.npz")
    save_npz(arrays, out)
    return out
