"""``--steps K``: how a stateful model's golden is made (``backends.states``).

A model is stateful when its ``forward`` mutates registered buffers; each route's worker
finds that out on its golden run. Its golden is then K successive calls of one fresh model:
- with ``--input`` shape specs, call i gets its own seeded inputs (call 1: the example case);
- with ``--inputs FILE.npz`` and ``--steps K``, every array in the file carries a leading
  axis of length K, one slice per call (the routes convert with the first slice);
- with ``--inputs`` and no ``--steps``, the file is one call's inputs, given to every call.
"""
from __future__ import annotations

import os
from collections import OrderedDict

from coreml_routes.errors import UserError

DEFAULT_STEPS = 4


def add_argument(p):
    p.add_argument("--steps", type=int, metavar="K",
                   help="a stateful model (forward mutates its buffers: a KV cache, a streaming "
                        "context) is checked over K successive calls from zeroed state (default "
                        "{}); with --inputs, every array there then carries a leading axis of "
                        "K, one slice per call".format(DEFAULT_STEPS))


def apply(args, request, tmp, int_range):
    """Add the worker flags for ``--steps`` to ``request`` (and, with --inputs and --steps,
    rewrite its inputs as the first call's); ``int_range``: where integer draws fall."""
    steps = getattr(args, "steps", None)
    if steps is not None and steps < 1:
        raise UserError("--steps must be at least 1, not {}".format(steps))
    request.worker_args = ["--steps", str(steps or DEFAULT_STEPS)]
    if steps is not None:
        request.flags += ["--steps", str(steps)]
    if request.inputs_npz is None or request.source.kind == "onnx":
        return request
    from backends.builds import Case, read_cases_file, split_steps, stack_steps, write_cases_file
    cases = read_cases_file(request.inputs_npz)
    first = cases[0].inputs
    if getattr(args, "inputs", None):
        if steps is None:
            return request
        try:
            calls = split_steps(first, steps)
        except ValueError as e:
            raise UserError("--inputs {} with --steps {}: {}".format(args.inputs[0], steps, e))
        for case in cases:
            case.inputs = split_steps(case.inputs, steps)[0] if case is not cases[0] else calls[0]
        write_cases_file(request.inputs_npz, cases)
        stacked = stack_steps(calls)
    elif getattr(args, "input", None):
        stacked = stack_steps([first] + [_draw(first, i, int_range)
                                         for i in range(1, steps or DEFAULT_STEPS)])
    else:
        return request
    path = os.path.join(tmp, "step_inputs.npz")
    write_cases_file(path, [Case("steps", stacked, OrderedDict())])
    request.worker_args += ["--step-inputs", path]
    return request


def _draw(example, step, int_range):
    """Call ``step``'s seeded inputs: the example's shapes and dtypes, normal(0, 1) floats,
    integers in ``int_range``."""
    import numpy as np
    lo, hi = int_range
    rng = np.random.RandomState(1000 + step)
    return OrderedDict((k, rng.randint(lo, hi, size=v.shape).astype(v.dtype) if v.dtype.kind in "iu"
                        else rng.standard_normal(v.shape).astype(v.dtype))
                       for k, v in example.items())
