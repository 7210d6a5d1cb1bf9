"""Count the recorded outcomes per test class and write results/conformance.{json,md}.

Outcome kinds (one per test):
    pass          predict was reached and the test passed
    numerical     predict returned, then the test's comparison failed
    raised        the reference evaluator raised inside predict
    timeout       the test ran out of time (CONFORMANCE_TEST_TIMEOUT) after reaching predict
    no_predict    the test ended (passed or failed) without calling predict
    needs_coreml  the test needs Core ML for something other than predict (skipped)
    skipped       the test skipped itself (e.g. a backend it does not apply to)
Pass rate = pass / (pass + numerical + raised + timeout), over the tests that reach predict.
"""
from __future__ import annotations

import collections
import json
import os
import re

from conformance.plugin import _MAC_ONLY

SCHEMA_VERSION = 1
KINDS = ("pass", "numerical", "raised", "timeout", "no_predict", "needs_coreml", "skipped")
REACHED = ("pass", "numerical", "raised", "timeout")
# Which figures the goal is stated on: default tolerances (NeuralNetwork, and ML Program at
# its default fp16 precision) and the sharp fp32 ML Program variants (atol 1e-4, rtol 1e-5).
GROUPS = {"default": ("neuralnetwork", "mlprogram-fp16"), "fp32": ("mlprogram-fp32",)}


def classify(rec) -> str:
    outcome = rec["outcome"]
    if outcome == "skipped":
        return "skipped"
    if outcome == "passed":
        return "pass" if rec["calls"] else "no_predict"
    if rec["calls"] and "TestTimeout" in ((rec.get("error") or [""])[0], (rec["raised"] or [""])[0]):
        return "timeout"
    if rec["raised"]:
        return "needs_coreml" if rec["raised"][0] == "NeedsCoreML" else "raised"
    if rec["returned"]:
        return "numerical"
    error = rec.get("error") or ["", ""]
    if error[0] == "NeedsCoreML" or _MAC_ONLY.search(error[1] or ""):
        return "needs_coreml"
    return "no_predict"


_BACKEND = re.compile(r"(mlprogram|neuralnetwork)'?\s*,\s*(?:precision=)?'?(fp16|fp32)")


def variant(rec) -> str:
    """neuralnetwork, mlprogram-fp16 or mlprogram-fp32: which backend the test ran on."""
    nodeid = rec["id"]
    if "test/neural_network/" in nodeid:
        return "neuralnetwork"
    match = _BACKEND.search(nodeid)
    if match:
        backend, precision = match.groups()
        return "neuralnetwork" if backend == "neuralnetwork" else "mlprogram-" + precision
    if rec.get("model") == "mlProgram":
        return "mlprogram-fp16"
    return "neuralnetwork" if rec.get("model") else "unknown"


def test_class(nodeid) -> str:
    """file::Class (or file::function) without parameters, path from coremltools/ on."""
    base = nodeid.split("[", 1)[0]
    parts = base.split("::")
    path = parts[0]
    path = path[path.index("coremltools/") + len("coremltools/"):] if "coremltools/" in path else path
    return "::".join([path] + parts[1:-1]) if len(parts) > 2 else "::".join([path] + parts[1:2])


def message_key(error) -> str:
    """An error message with layer / op names, paths and numbers blanked, to group alike
    failures (type names stay)."""
    cls, text = error
    text = re.sub(r"\b(layer|op|input|output|variable|blob) '[^']*'", r"\1 '…'", text or "")
    text = re.sub(r" in /\S+", "", text)
    text = re.sub(r"^/\S+: ", "", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)
    return "{}: {}".format(cls, text)[:240]


def _rate(counts):
    reached = sum(counts.get(k, 0) for k in REACHED)
    return (counts.get("pass", 0) / reached) if reached else None


def summarize(records, meta):
    by_class = collections.OrderedDict()
    groups = {name: collections.Counter() for name in list(GROUPS) + ["all"]}
    raised = collections.defaultdict(collections.Counter)
    numerical = collections.defaultdict(list)
    for rec in records:
        kind = classify(rec)
        var = variant(rec)
        key = test_class(rec["id"])
        row = by_class.setdefault(key, {"class": key, "counts": collections.Counter(),
                                        "by_variant": collections.defaultdict(collections.Counter)})
        row["counts"][kind] += 1
        row["by_variant"][var][kind] += 1
        groups["all"][kind] += 1
        for name, variants in GROUPS.items():
            if var in variants:
                groups[name][kind] += 1
        if kind == "raised":
            raised[key][message_key(rec["raised"])] += 1
        elif kind == "numerical":
            numerical[key].append({"id": rec["id"], "error": rec["error"]})
    classes = []
    for key, row in by_class.items():
        counts = {k: row["counts"].get(k, 0) for k in KINDS}
        classes.append({
            "class": key, "counts": counts, "pass_rate": _rate(counts),
            "by_variant": {v: {k: c.get(k, 0) for k in KINDS} for v, c in sorted(row["by_variant"].items())},
            "raised": [{"error": m, "count": n} for m, n in raised[key].most_common()],
            "numerical": numerical[key],
        })
    summary = {}
    for name, counts in groups.items():
        entry = {k: counts.get(k, 0) for k in KINDS}
        entry["tests"] = sum(counts.values())
        entry["reached_predict"] = sum(counts.get(k, 0) for k in REACHED)
        entry["pass_rate"] = _rate(counts)
        summary[name] = entry
    data = dict(meta)
    data.update({"schema_version": SCHEMA_VERSION, "summary": summary, "classes": classes})
    return data


def read_records(path):
    """(test records, number of tests collected or None)."""
    records, collected = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            item = json.loads(line)
            if "collected" in item:
                collected = item["collected"]
            else:
                records.append(item)
    return records, collected


def _pct(rate):
    return "—" if rate is None else "{:.1f} %".format(100 * rate)


def markdown(data) -> str:
    lines = ["# Conformance: coremltools {}'s own op tests against coreml_reference".format(
        data.get("coremltools", "?")), ""]
    lines.append("`{}` — suite `{}`, {} tests in {:.0f} s, fp32 variants {}.".format(
        data.get("command", ""), data.get("suite", ""), data["summary"]["all"]["tests"],
        data.get("seconds", 0), "included" if data.get("fp32_variants") else "not included"))
    ran, collected = data["summary"]["all"]["tests"], data.get("collected")
    if collected and ran < collected:
        lines += ["", "**Partial run:** {} of the {} collected tests ran (stopped early, pytest exit "
                  "code {}); the counts below are those of the tests that ran.".format(
                      ran, collected, data.get("pytest_exit_code"))]
    lines += ["", "Each test builds a model, computes expected outputs with numpy/torch and calls "
              "`MLModel.predict`, here answered by `coreml_reference.predict` (Linux, fp32). "
              "Pass rate is over the tests that reach predict.", ""]
    header = ["", "tests", "reach predict", "pass", "numerical fail", "evaluator raised",
              "timed out", "never reached predict", "skipped: needs Core ML",
              "skipped by the test", "pass rate"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    names = {"default": "default tolerances (NN + ML Program fp16)",
             "fp32": "fp32 ML Program variants (atol 1e-4)", "all": "all"}
    for name, entry in data["summary"].items():
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            names.get(name, name), entry["tests"], entry["reached_predict"], entry["pass"],
            entry["numerical"], entry["raised"], entry["timeout"], entry["no_predict"],
            entry["needs_coreml"], entry["skipped"], _pct(entry["pass_rate"])))
    lines += ["", "## Per test class", ""]
    lines.append("| class | pass | numerical | raised | timed out | never reached | needs Core ML "
                 "| skipped | pass rate |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for row in data["classes"]:
        c = row["counts"]
        lines.append("| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            row["class"], c["pass"], c["numerical"], c["raised"], c["timeout"], c["no_predict"],
            c["needs_coreml"], c["skipped"], _pct(row["pass_rate"])))
    failing = [row for row in data["classes"] if row["raised"] or row["numerical"]]
    if failing:
        lines += ["", "## What fails", ""]
    for row in failing:
        lines += ["### `{}`".format(row["class"]), ""]
        for item in row["raised"]:
            lines.append("- raised ×{}: `{}`".format(item["count"], item["error"].replace("`", "'")))
        for item in row["numerical"][:10]:
            lines.append("- numerical: `{}` — {}".format(
                item["id"].split("::")[-1][:160], (item["error"] or ["", ""])[1][:160].replace("`", "'")))
        if len(row["numerical"]) > 10:
            lines.append("- … {} more numerical failures (see conformance.json)".format(
                len(row["numerical"]) - 10))
        lines.append("")
    return "\n".join(lines) + "\n"


def write(data, out_dir, stem="conformance"):
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for suffix, text in ((".json", json.dumps(data, indent=1) + "\n"), (".md", markdown(data))):
        path = os.path.join(out_dir, stem + suffix)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        paths.append(path)
    return paths
