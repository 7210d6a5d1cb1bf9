"""Diagnose routes whose artifact only their own env runs (et's .pte, coreai's .aimodel).

The search runs in the route's env (``backends.route_diagnose``); here the host holds the
whole artifact's outputs against PyTorch's golden outputs and turns the env's report into
the diagnosis:

- **et**: the first Core ML partition whose outputs, computed by coreml_reference from
  PyTorch's inputs to that partition, depart from PyTorch's; then the first op inside it
  (MIL values named after the FX nodes they convert, in graph order).
- **coreai**: the first op whose value in Apple's Core AI interpreter departs from
  PyTorch's (``IntermediateLogger``, ops matched to torch nodes by coreai-torch's DEBUG
  mapping; ops Core AI fused into a later one are not compared).

The verdict comes from the outputs, as for the Core ML routes: when every output matches,
it is "matches" (or "fp16 within tolerance") whatever an intermediate does, and such an
op is kept as a note.
"""
from __future__ import annotations

from diagnose import divergence


def diagnose_in_env(python, route, model, folder, golden, samples, weights, hooks, outputs,
                    precision, env):
    """The diagnosis fields for a converted ``folder`` (``golden``: PyTorch's outputs)."""
    from backends.route_diagnose import run_in_env
    found, got = run_in_env(python, route, model, folder, samples=samples, weights=weights,
                            hooks=hooks, outputs=outputs, precision=precision, env=env)
    return summarize(route, found, got, golden, precision)


def summarize(route, found, got, golden, precision):
    """Pure: the env's document and the artifact's outputs -> the diagnosis fields."""
    result = {"outputs": divergence.output_errors(got if not found.get("run_error") else None,
                                                  golden, precision),
              "run_error": found.get("run_error"), "search_error": found.get("search_error"),
              "reference": REFERENCE[route]}
    report = found.get("report") or {}
    place = _et_place(report) if route == "et" else _coreai_place(report)
    result.update(place)
    result["counts"] = _et_counts(report) if route == "et" else _coreai_counts(report)
    result["verdict"] = verdict(result, precision)
    return result


REFERENCE = {
    "et": "PyTorch: each partition's edge program run node by node (coreml_reference runs "
          "the partition, fed PyTorch's inputs to it)",
    "coreai": "PyTorch: the decomposed torch.export program run node by node, against Core "
              "AI's interpreter's intermediates (IntermediateLogger)"}


def _et_place(report):
    first = report.get("first_divergent")
    if not first:
        return {"partition": None, "op": None}
    entry = report["partitions"][first["partition"]]
    partition = {"index": first["partition"], "file": entry.get("file"),
                 "precision": entry.get("precision"), "tolerance": entry.get("tolerance"),
                 "outputs": entry.get("outputs", [])}
    return {"partition": partition, "op": first.get("op")}


def _coreai_place(report):
    return {"partition": None, "op": report.get("first_divergent")}


def _et_counts(report):
    parts = report.get("partitions") or []
    ops = [o for p in parts for o in p.get("ops", [])]
    return {"partitions": len(parts),
            "partitions_within_tolerance": sum(1 for p in parts if p.get("within_tolerance")),
            "compared": len(ops), "agree": sum(1 for o in ops if o["within_tolerance"]),
            "not_compared": sum(len(p.get("not_compared", [])) for p in parts)}


def _coreai_counts(report):
    ops = report.get("ops") or []
    return {"compared": len(ops), "agree": sum(1 for o in ops if o["within_tolerance"]),
            "fused": len(report.get("fused") or {}), "unmapped": len(report.get("unmapped") or [])}


def verdict(result, precision):
    outputs_ok = not result.get("run_error") and bool(result["outputs"]) and all(
        o.get("agree") for o in result["outputs"].values())
    place = result.get("op") or result.get("partition")
    if outputs_ok:
        if place:
            result["departs_yet_outputs_match"] = {"partition": result.get("partition"),
                                                   "op": result.get("op")}
        result["partition"], result["op"] = None, None
        return "matches" if precision == "fp32" else "fp16 within tolerance"
    if place:
        return "diverges"
    if result.get("run_error"):
        return "runtime stopped"
    if result.get("search_error"):
        return "diverges (the search failed)"
    return "diverges (no compared op departs)"
