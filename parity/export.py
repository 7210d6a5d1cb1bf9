"""Write the parity package of one build folder (``BUILD/<model>/<route>``)."""
from __future__ import annotations

import json
import os
import re
import shutil

from bad_input import BadInput
from parity import golden_json, swift, tolerance

MARKER = "parity.json"   # what this package was made from; also tells a re-export it may replace it
KIND = "xctest-parity"


class ExportError(BadInput):
    """The folder cannot be exported (not a build, failed conversion, no golden data, ...)."""


def export(folder, out=None):
    """Write the package into ``out`` (default ``folder/xctest``), replacing an earlier
    export there but nothing else; -> the facts written to ``parity.json``."""
    from backends import builds
    from bench import accuracy, artifacts
    folder = os.path.normpath(folder)
    if not os.path.exists(folder):
        raise ExportError("{} does not exist; expected a build folder BUILD/<model>/<route>".format(folder))
    if not os.path.isdir(folder):
        raise ExportError("{} is not a directory; expected a build folder BUILD/<model>/<route>".format(folder))
    if not os.path.isfile(builds.record_path(folder)):
        raise ExportError("{} is not a build folder (no conversion.json); expected BUILD/<model>/<route>, "
                          "e.g. build/pann_mobilenetv1/v4".format(folder))
    parent, route = os.path.split(folder)
    build_dir, model = os.path.split(parent)
    art = artifacts.locate(build_dir, model, route)
    if not art.usable:
        reason = (art.reason.splitlines() or [""])[0]   # one error line; conversion.json keeps the rest
        raise ExportError("{}: {}; nothing to export".format(folder, reason))
    out = os.path.normpath(out or os.path.join(folder, "xctest"))
    _check_out(out)
    inputs, golden = builds.read_golden(art.folder)
    if not golden:
        raise ExportError("{}: golden.npz holds no outputs to compare".format(folder))
    fp16 = accuracy.reference_accuracy(art.model_path, inputs, golden, "fp16")
    if "not_measured" in fp16:
        raise ExportError("{}: cannot derive tolerances: {}".format(folder, fp16["not_measured"]))

    record = art.record
    source = " ".join("{}/{}".format(record.get("model") or model, record.get("route") or route).split())
    facts = {"kind": KIND, "schema": 1, "source": source, "spec_type": record.get("spec_type"),
             "model_file": os.path.basename(art.model_path), "factor": tolerance.FACTOR,
             "inputs": {}, "outputs": {}}
    files = {}   # relative path -> text
    stems = set()
    for name, value in inputs.items():
        stem = _stem("input", name, stems)
        files["golden/{}.json".format(stem)] = _json(folder, "input", name, value)
        facts["inputs"][name] = {"file": stem + ".json", "shape": list(value.shape)}
    for name, value in golden.items():
        figure = fp16["outputs"].get(name, {})
        error = figure.get("max_abs_error")
        if "not_measured" in figure or isinstance(error, str) or figure.get("nonfinite"):
            raise ExportError("{}: cannot derive a tolerance for output {!r}: the fp16 emulation gives {}".format(
                folder, name, figure.get("not_measured") or "inf/NaN (the model overflows float16 on its golden input)"))
        stem = _stem("output", name, stems)
        files["golden/{}.json".format(stem)] = _json(folder, "output", name, value)
        facts["outputs"][name] = {"file": stem + ".json", "shape": list(value.shape),
                                  "fp16_max_abs_error": error, "fp16_step": tolerance.fp16_step(value),
                                  "tolerance": tolerance.tolerance(error, value)}

    sources = swift.render(
        source, facts["spec_type"] or "Core ML model", facts["model_file"],
        [(n, f["file"][:-5]) for n, f in facts["inputs"].items()],
        [(n, f["file"][:-5], f["tolerance"], f["fp16_max_abs_error"]) for n, f in facts["outputs"].items()],
        tolerance.FACTOR)
    test_dir = os.path.dirname(next(p for p in sources if p.startswith("Tests/")))
    _write_package(out, art.model_path, test_dir, sources, files, facts)
    facts["out"] = out
    facts["test_file"] = os.path.join(out, next(p for p in sources if p.startswith("Tests/")))
    return facts


def _check_out(out):
    if os.path.exists(out) and not os.path.isdir(out):
        raise ExportError("--out {} is a file; give a folder".format(out))
    if os.path.isdir(out) and os.listdir(out) and not _is_ours(out):
        raise ExportError("--out {} holds files not written by export-xctest; give an empty or new folder".format(out))


def _is_ours(out):
    try:
        with open(os.path.join(out, MARKER)) as f:
            return json.load(f).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def _stem(kind, name, taken):
    stem = "{}_{}".format(kind, re.sub(r"[^A-Za-z0-9_.-]+", "_", name))
    base, n = stem, 2
    while stem in taken:
        stem, n = "{}_{}".format(base, n), n + 1
    taken.add(stem)
    return stem


def _json(folder, kind, name, value):
    try:
        return golden_json.dumps(value)
    except golden_json.NotWritable as e:
        raise ExportError("{}: golden {} {!r} {}".format(folder, kind, name, e))


def _write_package(out, model_path, test_dir, sources, files, facts):
    """Build the package beside ``out``, then swap it in: an interrupted or failed export
    leaves ``out`` as it was."""
    staging = "{}.staging-{}".format(out, os.getpid())
    old = "{}.old-{}".format(out, os.getpid())
    try:
        resources = os.path.join(staging, test_dir, "Resources")
        for rel, text in list(sources.items()) + [(os.path.join(test_dir, "Resources", p), t)
                                                  for p, t in files.items()]:
            path = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        target = os.path.join(resources, facts["model_file"])
        if os.path.isdir(model_path):
            shutil.copytree(model_path, target)
        else:
            shutil.copyfile(model_path, target)
        with open(os.path.join(staging, "README.md"), "w") as f:
            f.write(_readme(facts))
        with open(os.path.join(staging, MARKER), "w") as f:
            json.dump(facts, f, indent=2, sort_keys=True)
            f.write("\n")
        if os.path.isdir(out):
            os.rename(out, old)
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        os.rename(staging, out)
    finally:
        for leftover in (staging, old):
            if os.path.isdir(leftover):
                shutil.rmtree(leftover)


def _readme(facts):
    rows = "\n".join("| `{}` | {} | {:.3g} | {:.3g} | {:.3g} |".format(
        name, "×".join(str(d) for d in f["shape"]), f["fp16_max_abs_error"], f["fp16_step"], f["tolerance"])
        for name, f in facts["outputs"].items())
    return """# Core ML parity test: {source}

Generated by `coreml-routes export-xctest`. On a Mac with Xcode: `swift test`, or open
`Package.swift` in Xcode and press ⌘U. On an iPhone: open it in Xcode, pick the phone as the
run destination, ⌘U (or `xcodebuild test -scheme <package> -destination 'platform=iOS,name=<phone>'`).

The test compiles `{model_file}` with `MLModel.compileModel(at:)`, then for each compute unit
(`.cpuOnly`, `.cpuAndGPU`, `.cpuAndNeuralEngine`, `.all`) predicts on PyTorch's golden input and
compares every output with PyTorch's golden output (`Tests/*/Resources/golden/*.json`,
`{{"shape": [...], "data": [...]}}`, row-major float32).

Tolerance per output = {factor:g} × the fp16 max abs error: the reference evaluator's float16
emulation against PyTorch (the report's "fp16 accuracy (emulated GPU/NE)" column). Should that
error be 0, one fp16 step (the float16 spacing at the output's largest value) stands in.
GPU and Neural Engine compute in float16 and differ from the emulation in summation order and
fused ops; the factor {factor:g} allows for that. It is a choice, not measured on a device.

| output | shape | fp16 max abs error | fp16 step | tolerance |
|---|---|---|---|---|
{rows}
""".format(rows=rows, **facts)
