"""``compare``: convert one model by every route, check each result, recommend one.

Each route converts in its own env and process (``pipeline.conversions``), is verified
at fp32 and evaluated at emulated fp16 by the reference evaluator; ``compare.rules`` picks
the route to ship and says why not for the others.
"""
from __future__ import annotations

import time

from backends.builds import folder_name
from bench.artifacts import CONVERTER_STAGES
from compare import rules

SCHEMA = 1


def run_compare(request, backends, out_root, scratch, hooks=None, min_target=None,
                progress=None, jobs=2, variants=()):
    """The compare document (what compare.json holds). Routes convert ``jobs`` at a time
    (each is its own process); PyTorch's host run goes first for the user's own model (it
    finds their mistakes once, and may build the weights every route gets, in ``scratch``:
    a folder the caller keeps while it still converts the model), else alongside."""
    from concurrent.futures import ThreadPoolExecutor
    from pipeline.conversions import host_first, host_reference
    progress = progress or (lambda text: None)
    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        if host_first(request):   # the user's mistakes, once; the weights every route gets
            host = host_reference(request, scratch)
        else:
            host = pool.submit(host_reference, request, scratch)
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
            "host_torch": host.get("torch"), "jobs": jobs,
            "seconds": round(time.perf_counter() - start, 1)}


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
    from bench.verify import worst_case_at_precision
    from pipeline.conversions import artifact_runner, convert_route
    from bad_input import BadInput
    fp16_seconds = None
    try:
        record = convert_route(request, backend, out_root, hooks=hooks, host=host, variant=variant)
    except BadInput as e:    # e.g. the route's Python is not installed here
        record = {"status": "failed", "stage": "env", "error": str(e)}
    row = {"status": record["status"], "stage": record.get("stage"),
           "reason": record.get("reason") or record.get("error"),
           "verified": record.get("verified"), "golden_source": record.get("golden_source"),
           "torch_drift": record.get("torch_drift"),
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
        start = time.perf_counter()
        row["fp16"] = worst_case_at_precision(folder, record, "fp16", artifact_runner(backend))
        fp16_seconds = time.perf_counter() - start
        row["target"] = rules.target_of(row)
        row["folder"] = folder
        row["variant"] = variant
        row["compute_units"] = record.get("compute_units")
        row["precision"] = precision_of(record)
    row["stage_seconds"] = stage_seconds(record, fp16_seconds)
    return row


# Where a route's seconds go, in the order they pass. Theirs: the toolchain's import and the
# converter; ours: the env check, our process start and imports, the model build and PyTorch
# golden run (torch's arithmetic, our orchestration), the reference evaluator's checks.
STAGE_GROUPS = (
    ("env", ("env",)),
    ("toolchain", ("load_toolchain",)),
    ("build", ("build",)),
    ("golden", ("golden", "intermediates")),
    ("convert", CONVERTER_STAGES + ("inspect",)),
    ("verify", ("verify",)),
)


def stage_seconds(record, fp16=None):
    """{stage: seconds} for one route (``STAGE_GROUPS``, then "start": the worker process's
    wall time its own stages do not account for, and "fp16"); {} without timings."""
    seconds = record.get("seconds") or {}
    if not seconds:
        return {}
    out = {group: round(sum(seconds.get(k, 0.0) for k in keys), 1)
           for group, keys in STAGE_GROUPS if any(k in seconds for k in keys)}
    worker = sum(v for k, v in seconds.items() if k not in ("env", "process", "verify"))
    if "process" in seconds:
        out["start"] = round(max(0.0, seconds["process"] - worker), 1)
    if fp16 is not None:
        out["fp16"] = round(fp16, 1)
    return out


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
