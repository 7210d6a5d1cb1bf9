"""Run a model in this Python's PyTorch, in its own process: outputs on given inputs, and
the weights it was built with.

    python -m backends.reference_run --model SPEC --inputs IN.npz --out OUT.npz
        [--samples N] [--weights W.npz] [--state STATE.npz]

The host CLI runs it with its own Python (torch 2.x): ``--state`` hands a user model's
initial weights to every route so that all routes convert the same weights, and the
outputs give each conversion's ``torch_drift`` (the route env's older torch against this
one, same weights, same inputs). A user model that crashes takes only this process down.
Exit 0 ok, 1 the model failed (reason on stderr's last line), 2 the user's own mistake,
found here once before any route runs (``error: <one line>`` on stderr, file:line where
there is one): the factory is not in the file, ``FUNCTION()`` raises or returns no
nn.Module, or the forward fails on the inputs given. An ImportError is not counted as such
(the routes may have packages the host lacks, ``--requirements``): exit 1.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m backends.reference_run")
    p.add_argument("--model", required=True)
    p.add_argument("--inputs")
    p.add_argument("--samples", type=int, default=32000)
    p.add_argument("--weights")
    p.add_argument("--out", required=True)
    p.add_argument("--state")
    args = p.parse_args(argv)
    import numpy as np
    import torch
    from backends import sources
    from collections import OrderedDict
    from backends.base import Untimed, last_line
    from backends.builds import write_arrays
    from backends.preflight import BUILD, FORWARD, mistake
    source, step = sources.parse(args.model), BUILD
    try:
        loaded = sources.load(source, Untimed(), args.samples, args.inputs, args.weights)
        step = FORWARD
        with torch.no_grad():
            outputs = loaded.module(*(torch.from_numpy(a) for a in loaded.inputs.values()))
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    except Exception as e:  # noqa: BLE001 — the user's model: any failure is reported, not raised
        found = mistake(source, step, e, loaded.inputs if step == FORWARD else None)
        if found:
            sys.stderr.write("error: {}\n".format(found))
            return 2
        sys.stderr.write("{}: {}\n".format(type(e).__name__, last_line(str(e))))
        return 1
    write_arrays(args.out, loaded.inputs,
                 OrderedDict((str(i), o.detach().numpy()) for i, o in enumerate(outputs)),
                 torch_version=np.array(torch.__version__))
    if args.state:
        inner = getattr(loaded.module, "inner", loaded.module)
        np.savez(args.state, **dict((k, v.detach().numpy()) for k, v in inner.state_dict().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
