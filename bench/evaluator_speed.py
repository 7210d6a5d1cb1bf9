"""How fast is the numpy reference evaluator, next to PyTorch eager on the same CPU?

    python bench/evaluator_speed.py [--build DIR] [--repeat N] [--model NAME] [--threads T]

For one zoo model (default pann_mobilenetv1) it times, in one run and interleaved so both
see the same machine load: PyTorch eager (``zoo.get(name).build()``, no grad) and the
evaluator on every route's converted model found under ``DIR/<model>/<route>/``. Inputs come
from that route's golden.npz (1 s of audio for the PANNs). Each model is loaded once, then
evaluated ``--repeat`` times — decoding weights is part of loading, as it is for a runtime;
the first (cold) evaluation is reported separately. torch and numpy's BLAS get the same number
of threads (default os.cpu_count()). Routes the evaluator cannot run yet are listed with the
reason. On a shared machine, compare ratios from one run, not medians across runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

from backends import builds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    threads = args.threads or os.cpu_count() or 1
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)     # read by numpy's BLAS when first imported:
                                                # numpy is imported in the functions below
    import torch
    torch.set_num_threads(threads)
    routes, skipped = load_routes(args.build, args.model)
    if not routes:
        print("no runnable route of {} under {}".format(args.model, args.build))
        for route, reason in skipped:
            print("  {}: {}".format(route, reason))
        return 1
    inputs = next(iter(routes.values()))["inputs"]
    torch_call = torch_runner(args.model, inputs)
    timings = {"pytorch": []}
    for route in routes:
        timings[route] = []
    torch_call()                                   # warm-up: first eager call allocates
    for route, entry in list(routes.items()):
        try:
            entry["cold"] = timed(entry["call"])   # first evaluation also decodes weights
        except Exception as error:                 # noqa: BLE001 — report, keep benchmarking
            skipped.append((route, "{}: {}".format(type(error).__name__, error)))
            del routes[route], timings[route]
    for _ in range(args.repeat):                   # interleaved: same load for everyone
        timings["pytorch"].append(timed(torch_call))
        for route, entry in routes.items():
            timings[route].append(timed(entry["call"]))
    print_table(args, threads, timings, routes, skipped)
    return 0


def parse_args(argv):
    default_build = os.environ.get("COREML_ROUTES_BUILD") or os.path.join(ROOT, "build")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=default_build,
                        help="build directory (default: $COREML_ROUTES_BUILD or <repo>/build)")
    parser.add_argument("--repeat", type=int, default=20, help="timed evaluations per runner")
    parser.add_argument("--model", default="pann_mobilenetv1", help="zoo model name")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for torch and numpy's BLAS (default: os.cpu_count())")
    return parser.parse_args(argv)


def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def load_routes(build, model):
    """{route: {"call", "inputs"}} for every artifact the evaluator can load, plus skips."""
    from coreml_reference.loader import load
    folder = os.path.join(build, model)
    routes, skipped = {}, []
    if not os.path.isdir(folder):
        return routes, [("*", "{} does not exist".format(folder))]
    for route in sorted(os.listdir(folder)):
        artifact = find_artifact(os.path.join(folder, route))
        golden = builds.golden_path(os.path.join(folder, route))
        if artifact is None or not os.path.exists(golden):
            skipped.append((route, "no model artifact / golden.npz"))
            continue
        try:
            loaded = load(artifact)
            run = runner_for(loaded)
        except Exception as error:                 # noqa: BLE001
            skipped.append((route, "{}: {}".format(type(error).__name__, error)))
            continue
        inputs = builds.read_golden(os.path.join(folder, route))[0]
        routes[route] = {"call": (lambda run=run, loaded=loaded, inputs=inputs: run(loaded, inputs)),
                         "inputs": inputs}
    return routes, skipped


def find_artifact(route_dir):
    for name in ("model.mlpackage", "model.mlmodel"):
        path = os.path.join(route_dir, name)
        if os.path.exists(path):
            return path
    return None


def runner_for(loaded):
    """The evaluator's run function for this spec kind, called on one LoadedModel so repeated
    runs reuse decoded weights."""
    from coreml_reference import runner_for as evaluator_for
    return evaluator_for(loaded)


def torch_runner(model, inputs):
    import numpy as np
    import torch
    import zoo
    module = zoo.get(model).build()
    tensors = [torch.from_numpy(np.ascontiguousarray(inputs[name])) for name in zoo.get(model).inputs]

    def call():
        with torch.no_grad():
            module(*tensors)
    return call


def print_table(args, threads, timings, routes, skipped):
    base = statistics.median(timings["pytorch"])
    print("{} — median of {} runs, {} thread(s), build {}".format(
        args.model, args.repeat, threads, args.build))
    print("{:<22} {:>12} {:>12} {:>18}".format("runner", "median s", "cold s", "ratio vs PyTorch"))
    print("{:<22} {:>12.4f} {:>12} {:>18}".format("pytorch eager", base, "-", "1.00"))
    for route, entry in routes.items():
        median = statistics.median(timings[route])
        print("{:<22} {:>12.4f} {:>12.4f} {:>18.2f}".format(
            "evaluator " + route, median, entry["cold"], median / base))
    for route, reason in skipped:
        print("skipped {}: {}".format(route, reason))


if __name__ == "__main__":
    sys.exit(main())
