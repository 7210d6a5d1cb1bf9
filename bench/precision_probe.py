"""Which precision does Core ML compute float16-typed ML Program ops in, per compute unit?

Apple's Typed Execution guide allows both: the types are a floor, so a float16-typed op "may
run with float 32 precision as well", and only "a few selected ops, such as convolution" have
a float16 CPU kernel. ``coreml_reference`` runs such ops as typed (a float16 result per op);
whether Core ML's CPU does the same decides a few dozen of Apple's fp32-variant op tests (see
the README's conformance section). This probe settles it on a Mac.

Each probe is a tiny ML Program whose float16-typed ops give one answer when every op's result
is rounded to float16 and another when nothing is rounded until the float32 output: adding
2048 to small integers leaves float16's integer range (its spacing there is 2), so
``(x + 2048) - 2048`` is ``x`` in float32 and ``x`` rounded to an even number in float16. Both
answers are worked out here with numpy, independently of Core ML and of our evaluator.

    python -m bench.precision_probe [--out results]    # on a Mac; elsewhere says why not

writes ``fp16-probe.json`` and prints, per probe and compute unit, "float16 per op",
"float32" or "neither" (with the outputs). Off macOS every Core ML cell is "not measured:
needs macOS"; the reference evaluator's answer is printed beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

from bench.macos import COMPUTE_UNITS, NEEDS_MACOS, CoreMLToolsRuntime, is_macos, not_measured

X = np.array([1.0, 3.0, 5.0, 6.0], np.float32)
BIG = 2048.0          # float16 spacing is 2 from 2048 to 4096


def _add_sub(mb, x):
    return mb.sub(x=mb.add(x=x, y=np.float16(BIG)), y=np.float16(BIG))


def _conv_sub(mb, x):
    # a 1x1 convolution (weight 1, bias 2048) over the values as channels
    x = mb.reshape(x=x, shape=[1, len(X), 1, 1])
    y = mb.conv(x=x, weight=np.eye(len(X), dtype=np.float16).reshape(len(X), len(X), 1, 1),
                bias=np.full(len(X), BIG, np.float16))
    return mb.reshape(x=mb.sub(x=y, y=np.float16(BIG)), shape=[len(X)])


# Both probes compute (x + 2048) - 2048: with every op rounded to float16, and in float32.
FP16_ANSWER = (X.astype(np.float16) + np.float16(BIG)) - np.float16(BIG)
FP32_ANSWER = (X + np.float32(BIG)) - np.float32(BIG)

# name -> (MIL body on a float16 x, the float16-per-op answer, the float32 answer)
PROBES = {"add_sub": (_add_sub, FP16_ANSWER, FP32_ANSWER),
          "conv_sub": (_conv_sub, FP16_ANSWER, FP32_ANSWER)}


def build(name, folder):
    """The probe as an iOS16 ML Program: float32 input and output, float16 ops between."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    body = PROBES[name][0]

    @mb.program(input_specs=[mb.TensorSpec(shape=X.shape)], opset_version=ct.target.iOS16)
    def prog(x):
        y = body(mb, mb.cast(x=x, dtype="fp16"))
        return mb.cast(x=y, dtype="fp32", name="y")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32, skip_model_load=not is_macos(),
                       pass_pipeline=ct.PassPipeline.EMPTY)
    path = os.path.join(folder, name + ".mlpackage")
    model.save(path)
    return path


def verdict(output, name):
    """Which of the two answers ``output`` is."""
    _, fp16, fp32 = PROBES[name]
    output = np.asarray(output, np.float64).reshape(-1)
    for label, answer in (("float16 per op", fp16), ("float32", fp32)):
        if np.array_equal(output, np.asarray(answer, np.float64)):
            return {"verdict": label, "output": output.tolist()}
    return {"verdict": "neither", "output": output.tolist()}


def probe(runtime=None, folder=None):
    """{probe: {"reference": verdict, compute unit: verdict or not measured}}. ``runtime``:
    a ``bench.macos.CoreMLRuntime`` (Core ML itself on a Mac, a fake in tests)."""
    import coreml_reference
    if runtime is None and is_macos():
        runtime = CoreMLToolsRuntime()
    results = {}
    with tempfile.TemporaryDirectory(prefix="fp16-probe-") as tmp:
        for name in PROBES:
            path = build(name, folder or tmp)
            row = {"reference": verdict(coreml_reference.predict(path, {"x": X})["y"], name)}
            for unit in COMPUTE_UNITS:
                row[unit] = _run(runtime, path, unit, name)
            results[name] = row
    return results


def _run(runtime, path, unit, name):
    if runtime is None:
        return not_measured(NEEDS_MACOS)
    try:
        return verdict(runtime.load(path, unit).predict({"x": X})["y"], name)
    except Exception as e:   # noqa: BLE001 — Core ML refusing the probe is a result
        return not_measured("Core ML {}: {}: {}".format(unit, type(e).__name__, e))


def _cell(cell):
    return cell.get("verdict") or "not measured: " + cell["not_measured"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.precision_probe",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results", help="folder for fp16-probe.json")
    args = parser.parse_args(argv)
    try:                                   # before the work: a bad --out loses nothing
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        sys.stderr.write("error: --out {}: {}\n".format(args.out, e.strerror or e))
        return 2
    results = probe()
    for name, row in results.items():
        print(name)
        for key, cell in row.items():
            print("  {:<12} {}".format(key, _cell(cell)))
    with open(os.path.join(args.out, "fp16-probe.json"), "w") as f:
        json.dump({"x": X.tolist(), "probes": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
