"""``compare``: convert one model by every route, check each result, recommend one.

Each route converts in its own env and process (``pipeline.conversions``), is verified
at fp32 and evaluated at emulated fp16 by the reference evaluator; ``compare.rules`` picks
the route to ship and says why not for the others.
"""
from __future__ import annotations

import time

from backends.builds import folder_name
from compare import rules

SCHEMA = 1


def run_compare(request, backends, out_root, hooks=None, min_target=None, progress=None,
                jobs=2, variants=()):
    """The compare document (what compare.json holds). Routes convert ``jobs`` at a time
    (each is its own process); PyTorch's host run goes first for the user's own model (it
    finds their mistakes once, and may build the weights every route gets), else alongside."""
    from concurrent.futures import ThreadPoolExecutor
    from pipeline.conversions import host_first, host_reference
    import tempfile
    progress = progress or (lambda text: None)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="coreml-routes-compare-") as tmp, \
            ThreadPoolExecutor(max(1, jobs)) as pool:
        if host_first(request):   # the user's mistakes, once; the weights every route gets
            host = host_reference(request, tmp)
        else:
            host = pool.submit(host_reference, request, tmp)
        futures = [(folder_name(b.name, v), pool.submit(route_row, request, b, out_root, hooks, host, v))
                   for b, v in jobs_of(backends, variants)]
        rows = {}
        for name, future in futures:
            rows[name] = future.result()
            progress("{}: {}".format(name, status_words(rows[name])))
        host = host.result() if hasattr(host, "result") else host
    recommended, reasons, why_not = rules.recommend(rows, min_target)
    for route, why in why_not.items():
        rows[route]["why_not"] = why
    return {"schema": SCHEMA, "model": request.name, "source": request.source.spec,
            "weights": request.weights, "min_target": min_target, "rules": rules.RULES,
            "recommended": recommended, "reasons": reasons, "routes": rows,
            "host_torch": host.get("torch"), "seconds": round(time.perf_counter() - start, 1)}


def jobs_of(backends, variants):
    """(backend, None) for every route, then (backend, variant) for each asked-for variant
    the route offers (``backends.variants``)."""
    plain = [(b, None) for b in backends]
    return plain + [(b, v) for b in backends for v in getattr(b, "variants", ()) if v in variants]


def status_words(row):
    if row["status"] == "ok":
        return "converted, {}".format((row.get("verified") or {}).get("status"))
    return row["status"] if row["status"] == "not applicable" else "failed at {}".format(row.get("stage"))


def route_row(request, backend, out_root, hooks, host, variant=None):
    from backends.builds import route_dir
    from bench.artifacts import conversion_summary
    from bench.verify import evaluate
    from pipeline.conversions import artifact_runner, convert_route
    from bad_input import BadInput
    try:
        record = convert_route(request, backend, out_root, hooks=hooks, host=host, variant=variant)
    except BadInput as e:    # e.g. the route's Python is not installed here
        record = {"status": "failed", "stage": "env", "error": str(e)}
    row = {"status": record["status"], "stage": record.get("stage"),
           "reason": record.get("reason") or record.get("error"),
           "verified": record.get("verified"), "torch_drift": record.get("torch_drift"),
           "fp32": {}, "fp16": {}, "size_bytes": record.get("file_bytes"),
           "seconds": conversion_summary(record)["seconds"] if record.get("seconds") else None,
           "toolchain": record.get("toolchain"), "runtime": backend.runtime,
           "min_os": backend.min_os, "spec_version": spec_version(record),
           "model_type": record.get("spec_type"),
           "layers_ops": record.get("layer_count", record.get("op_count"))}
    if record.get("executorch"):
        row["executorch"] = record["executorch"]
    row.update(input_shapes_of(record))
    if record["status"] == "ok":
        verified = record.get("verified") or {}
        row["fp32"] = {"snr_db": verified.get("worst_snr_db"),
                       "max_abs_error": verified.get("max_abs_error")}
        folder = route_dir(out_root, request.name, backend.name, variant)
        row["fp16"] = evaluate(folder, record, "fp16", artifact_runner(backend))
        row["target"] = rules.target_of(row)
        row["folder"] = folder
        row["variant"] = variant
        row["compute_units"] = record.get("compute_units")
        row["precision"] = precision_of(record)
    return row


def input_shapes_of(record):
    """{"input_shapes": {name: text}} as the route converted each input (``fixed 1x1024`` /
    ``range 1..16 x 1024`` / ``enumerated {1,8,16} x 1024``), with the route's notes on
    them; empty when the record says nothing (a failed conversion)."""
    out = {}
    if record.get("input_shapes"):
        out["input_shapes"] = dict(record["input_shapes"])
    if record.get("input_shapes_notes"):
        out["input_shapes_notes"] = dict(record["input_shapes_notes"])
    return out


def spec_version(record):
    """The Core ML spec version the artifact needs: its own, or for an ExecuTorch program
    the newest of its Core ML partitions'."""
    partitions = [p.get("spec_version") for p in record.get("partition_specs") or []]
    return record.get("spec_version") or max([v for v in partitions if v] or [None], key=lambda v: v or 0)


def precision_of(record):
    """What the artifact computes in: fp32, fp16 or mixed (a NeuralNetwork computes fp32 on
    the CPU; GPU and Neural Engine choose fp16 themselves, as the fp16 column shows)."""
    return record.get("compute_precision") or "fp32"
