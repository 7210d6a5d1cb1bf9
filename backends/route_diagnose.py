"""Where a route that runs only in its own env departs from PyTorch (``diagnose --route et``,
``--route coreai``): the search runs in that env, the host only orchestrates.

    python -m backends.route_diagnose --route et --model SPEC --folder BUILD/m/et+fp32
        --report OUT.json --outputs-npz OUT.npz [--samples N] [--weights W.npz]
        [--hooks HOOKS.py] [--outputs a,b] [--precision fp32|fp16]

The child rebuilds the model as the worker did (same spec, weights and hooks, fed the inputs
of the folder's golden.npz), then:

- runs the converted artifact in the folder as a whole (``Backend.run_artifact``), whose
  outputs the host holds against PyTorch's golden outputs (``--outputs-npz``);
- searches where the lowering departs, by the route's own helper: et,
  ``backends.executorch_diagnose`` (the first divergent Core ML partition, then the op in
  it); coreai, ``backends.coreai_intermediates`` (the first divergent op, from Apple's
  interpreter's intermediates).

It writes {"report": the helper's report, "run_error": why the artifact did not run, or
None, "search_error": why the search did not, or None} as JSON. Bad input (a hooks file
that does not load, a model that does not build): one ``error:`` line, exit 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

from backends.worker import hook_paths

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
TIMEOUT = 1800
HELPERS = ("et", "coreai")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m backends.route_diagnose")
    p.add_argument("--route", required=True, choices=HELPERS)
    p.add_argument("--model", required=True)
    p.add_argument("--folder", required=True, help="the converted route folder")
    p.add_argument("--report", required=True)
    p.add_argument("--outputs-npz", required=True)
    p.add_argument("--samples", type=int, default=32000)
    p.add_argument("--weights")
    p.add_argument("--hooks", action="append", default=[])
    p.add_argument("--outputs")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    args = p.parse_args(argv)
    from backends.base import BadInput
    try:
        found, outputs = run(args)
    except BadInput as e:
        sys.stderr.write("error: {}\n".format(e))
        return EXIT_BAD_INPUT
    import numpy as np
    np.savez(args.outputs_npz, **dict((k, np.asarray(v)) for k, v in (outputs or {}).items()))
    with open(args.report, "w") as f:
        json.dump(plain(found), f, indent=1, allow_nan=False)
    return EXIT_OK


def run(args):
    """(the JSON document, {output name: array} of the whole artifact's run)."""
    import warnings
    import backends
    from backends import sources
    from backends.base import BadInput, Untimed, last_line
    from backends.builds import golden_path, read_record
    from backends.worker import load_all_hooks

    backend = backends.get(args.route)
    folder = os.path.abspath(args.folder)
    record = read_record(folder)
    if record is None:
        raise BadInput("{}: no conversion record".format(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backend.load_toolchain()
        hooks = load_all_hooks(hook_paths(args.hooks), backend.name)
        outputs = args.outputs.split(",") if args.outputs else None
        loaded = sources.load(sources.parse(args.model), Untimed(), args.samples,
                              golden_path(folder), args.weights, outputs)
    names = loaded.output_names or list(record.get("output_names") or [])
    if not names:
        names = [f["name"] for f in record.get("outputs") or []]
    found = {"report": None, "run_error": None, "search_error": None,
             "variant": record.get("variant"), "precision": args.precision}
    got = None
    try:
        got = backend.run_artifact(os.path.join(folder, backend.artifact), record,
                                   loaded.inputs, args.precision)
    except Exception as e:  # noqa: BLE001 — a runtime that stops is a finding, reported
        found["run_error"] = "{}: {}".format(type(e).__name__, last_line(str(e)) or repr(e))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found["report"] = search(backend.name, loaded.module, loaded.inputs, names, hooks,
                                     record.get("variant"), args.precision)
    except Exception as e:  # noqa: BLE001
        found["search_error"] = "{}: {}".format(type(e).__name__, last_line(str(e)) or repr(e))
    return found, got


def search(route, module, inputs, output_names, hooks, variant, precision):
    if route == "et":
        from backends.executorch_diagnose import compare_with_torch
        return compare_with_torch(module, inputs, output_names, hooks=hooks, variant=variant,
                                  precision=precision)
    from backends.coreai_intermediates import compare_with_torch
    return compare_with_torch(module, inputs, output_names, hooks=hooks, variant=variant)


def plain(value):
    """JSON-safe: numpy scalars as Python numbers, inf / NaN as None (an exact match has
    infinite SNR; JSON has no such number)."""
    if isinstance(value, dict):
        return dict((str(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


class RouteDiagnoseError(RuntimeError):
    """The route env's search died (no report written): its last line."""


def run_in_env(python, route, model, folder, samples=32000, weights=None, hooks=None,
               outputs=None, precision="fp32", env=None, timeout=TIMEOUT):
    """In the host: the child above, run by ``python`` (the route's env); returns (the JSON
    document, {output name: array}). A bad input is the child's BadInput again."""
    import numpy as np
    from backends.base import BadInput, last_line
    with tempfile.TemporaryDirectory(prefix="coreml-routes-diagnose-") as tmp:
        report, arrays = os.path.join(tmp, "report.json"), os.path.join(tmp, "outputs.npz")
        cmd = [python, "-m", "backends.route_diagnose", "--route", route, "--model", model,
               "--folder", folder, "--report", report, "--outputs-npz", arrays,
               "--samples", str(samples), "--precision", precision]
        for flag, value in (("--weights", weights),
                            ("--outputs", ",".join(outputs) if outputs else None)):
            if value:
                cmd += [flag, value]
        for path in hook_paths(hooks):
            cmd += ["--hooks", path]
        try:
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RouteDiagnoseError("route {} diagnosis timed out after {} s".format(route, timeout))
        line = last_line(done.stderr)
        if done.returncode == EXIT_BAD_INPUT:
            raise BadInput(line[len("error: "):] if line.startswith("error: ") else line)
        if done.returncode != 0 or not os.path.exists(report):
            raise RouteDiagnoseError(line or "route {} diagnosis failed (exit {})".format(
                route, done.returncode))
        with open(report) as f:
            found = json.load(f)
        with np.load(arrays, allow_pickle=False) as data:
            got = dict((k, data[k]) for k in data.files)
    return found, got


if __name__ == "__main__":
    sys.exit(main())
