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
        p.add_argument("--samples", type=int, default=32000, metavar="N",
                       help="zoo models: example waveform length in samples (32 kHz; default "
                            "32000 = 1 s). The converted model takes exactly this input shape")
    p.add_argument("--input", action="append", default=[], metavar="NAME:SHAPE[:DTYPE]",
                   help="your model's input, repeatable, in forward() order: e.g. "
                        "x:1x3x224x224 or tokens:1x16:int64 (DTYPE: {}; default float32). "
                        "Example values: seeded normal(0, 1) floats, integers in "
                        "--int-range".format(", ".join(DTYPES)))
    p.add_argument("--inputs", metavar="FILE.npz",
                   help="your model's inputs as arrays keyed by input name (instead of --input); "
                        "they become the golden inputs")
    p.add_argument("--int-range", metavar="LO,HI",
                   help="integer example inputs uniform in [LO, HI) (default 0,100; e.g. your "
                        "vocabulary size for token ids)")
    p.add_argument("--output", action="append", default=[], metavar="NAME",
                   help="name of an output, repeatable, in order (default output_0, output_1, ...; "
                        "tuple, list and dict outputs are flattened in order)")
    p.add_argument("--name", metavar="ID",
                   help="model id: files go to DIR/<ID>/<route>/ (default: the zoo name, "
                        "<file>-<function>, or the file's stem)")
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
    return request


def _zoo_request(args, source, samples, flags, tmp):
    import zoo
    own = [f for f, given in (("--input", args.input), ("--output", args.output),
                              ("--int-range", args.int_range)) if given]
    if own:
        raise UserError("{} is for your own models; zoo model {} takes --samples (or --inputs "
                        "FILE.npz)".format(own[0], source.spec))
    entry = zoo.get(source.spec)
    entry.check_samples(samples)
    name = _checked_name(args.name or source.spec)
    if samples != 32000:
        flags += ["--samples", str(samples)]
    request = ModelRequest(source, name, samples=samples, flags=flags,
                           input_note="the zoo's example input ({} samples)".format(samples))
    if args.inputs:   # e.g. a stress input: the zoo model fed the user's arrays
        from backends.builds import write_arrays
        arrays = read_inputs_npz(args.inputs)
        if sorted(arrays) != sorted(entry.inputs):
            raise UserError("--inputs {}: {} takes {}, the file holds {}".format(
                args.inputs, entry.name, ", ".join(entry.inputs), ", ".join(arrays)))
        request.inputs_npz = os.path.join(tmp, "inputs.npz")
        write_arrays(request.inputs_npz, OrderedDict((k, arrays[k]) for k in entry.inputs))
        request.input_note = "--inputs {}".format(args.inputs)
        flags += ["--inputs", args.inputs]
    return request


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
    if args.inputs:
        arrays = read_inputs_npz(args.inputs)
        flags += ["--inputs", args.inputs]
    elif args.input:
        arrays = example_inputs([parse_input_spec(s) for s in args.input], int_range)
        flags += [f for s in args.input for f in ("--input", s)]
        if args.int_range:
            flags += ["--int-range", args.int_range]
    else:
        arrays = None   # an ONNX file with fixed input shapes says them itself
    outputs = [_checked_output(o) for o in args.output] or None
    flags += [f for o in args.output for f in ("--output", o)]
    name = _checked_name(args.name or source.default_name)
    if args.name:
        flags += ["--name", args.name]
    source.path = os.path.abspath(source.path) if source.path.endswith(
        (".py", ".pt", ".ts", ".onnx")) else source.path
    if source.kind == ONNX:
        from coreml_routes import onnx_inputs
        arrays, golden = onnx_inputs.golden(source.path, arrays,
                                            lambda specs: example_inputs(specs, int_range))
        outputs = outputs or list(golden)
        golden = _named_golden(golden, outputs)
    else:
        golden = None
    from backends.builds import write_arrays   # here: `coreml-routes --help` stays fast
    path = os.path.join(tmp, "inputs.npz")
    write_arrays(path, arrays, golden)
    note = ("--inputs {}".format(args.inputs) if args.inputs else
            "--input " + " --input ".join(args.input) if args.input else "from the ONNX file's shapes")
    return ModelRequest(source, name, inputs_npz=path, outputs=outputs, flags=flags, input_note=note)


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
    if not re.match(r"^[0-9]+(x[0-9]+)*$", shape_text) or any(int(d) < 1 for d in shape_text.split("x")):
        raise UserError("--input {!r}: SHAPE {!r} must be positive sizes joined by x, e.g. "
                        "1x3x224x224".format(spec, shape_text))
    if dtype not in DTYPES:
        raise UserError("--input {!r}: DTYPE {!r} is not one of {}".format(spec, dtype, ", ".join(DTYPES)))
    return name, tuple(int(d) for d in shape_text.split("x")), dtype


def parse_int_range(text):
    try:
        lo, hi = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError("--int-range {!r}: expected LO,HI (integers), e.g. 0,30522".format(text))
    if lo >= hi:
        raise UserError("--int-range {!r}: LO must be below HI".format(text))
    return lo, hi


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
