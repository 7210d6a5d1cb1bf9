"""results/*.json -> results/README.md (tabulate tables) and PNG plots beside it.

Views only: every figure shown comes from the JSON files; a cell that holds no figure
says why, in words."""
from __future__ import annotations

import math
import os

from bench.macos import COMPUTE_UNITS
from bench.stats import protocol_text

SNR_CAP_DB = 150.0   # plots: an exact match (inf dB) is drawn at this height


# --- cells ----------------------------------------------------------------------------

def why(cell, limit=90):
    reason = cell["not_measured"]
    reason = reason if len(reason) <= limit else reason[:limit - 1] + "…"
    return "not measured: " + reason


def measured(cell):
    return isinstance(cell, dict) and "not_measured" not in cell


def latency_text(block):
    if not measured(block):
        return why(block) if isinstance(block, dict) else "not measured: not in this run"
    return "{:.3g} ms (p90 {:.3g}, min {:.3g})".format(block["median"], block["p90"], block["min"])


def _snr_value(x):
    return float(x)   # JSON keeps inf / -inf / nan as strings; float() reads them back


def worst_snr(figures):
    """Lowest SNR (dB) over all outputs: the one that tells how bad it gets; None if none."""
    values = [_snr_value(f["snr_db"]) for f in figures.values() if measured(f)]
    return min(values) if values else None


def accuracy_text(result):
    """fp32/fp16/device accuracy -> 'SNR ≥ 91.2 dB, max err 3.1e-05, top-5 5/5'."""
    if not measured(result):
        return why(result) if isinstance(result, dict) else "not measured: not in this run"
    figures = result.get("outputs", result)
    parts = []
    snr = worst_snr(figures)
    nonfinite = sum(int(f.get("nonfinite", 0)) for f in figures.values() if measured(f))
    if nonfinite:
        parts.append("{} output values inf/NaN".format(nonfinite))
    elif snr is not None:
        parts.append("SNR ≥ {} dB".format("inf" if math.isinf(snr) else "{:.1f}".format(snr)))
    errors = [_snr_value(f["max_abs_error"]) for f in figures.values()
              if measured(f) and not f.get("nonfinite")]
    if errors:
        parts.append("max err {:.2g}".format(max(errors)))
    for f in figures.values():
        if measured(f) and "top5_agreement" in f:
            parts.append("top-5 {:d}/5".format(round(f["top5_agreement"] * 5)))
    broken = [n for n, f in figures.items() if not measured(f)]
    if broken:
        parts.append("{}: {}".format(", ".join(broken), why(figures[broken[0]], 60)))
    first = result.get("first_nonfinite") if isinstance(result, dict) else None
    if first:
        parts.append("inf/NaN first at {} ({})".format(first["layer"], first["type"]))
    return ", ".join(parts) or "no outputs compared"


def device_text(cell):
    if not measured(cell):
        return why(cell)
    block = cell["latency"]
    if "protocol" in block:   # ModelBench: its figure is the mean of the trimmed rounds
        text = "{:.3g} ms (min {:.3g}, max {:.3g})".format(block["mean"], block["min"], block["max"])
    else:
        text = latency_text(block)
    text += "; load {:.2f} s".format(cell["load_seconds"])
    if "first_prediction_seconds" in cell:
        text += ", first {:.3g} ms".format(cell["first_prediction_seconds"] * 1000.0)
    snr = worst_snr(cell.get("accuracy", {}))
    if snr is not None:
        text += "; SNR ≥ {}".format("inf" if math.isinf(snr) else "{:.1f} dB".format(snr))
    placement = cell.get("placement")
    if measured(placement):
        text += "; " + " ".join("{} {}".format(d, n) for d, n in sorted(placement["devices"].items()))
        cost = placement.get("estimated_cost")
        if measured(cost):
            text += "; Neural Engine {:.0%} of est. cost".format(cost["neural_engine_share"])
    return text


def runs_text(block):
    return "{} runs after {} warm-up".format(block["runs"], block["warmup"])


def timing_text(row):
    """How one row was timed, from the row itself (rows of one file come from different runs)."""
    timing = row.get("timing")
    if timing is None:   # rows written before rows said it: their latency blocks do
        block = (row.get("reference") or {}).get("latency")
        return "evaluator " + runs_text(block) if measured(block) else "–"
    text = "evaluator " + runs_text(timing["reference_evaluator"])
    if timing.get("coreml"):
        text += "; Core ML " + protocol_text(timing["coreml"])
    return text


def _mb(n):
    if not isinstance(n, (int, float)):
        return "–"
    return "{:.1f} MB".format(n / 1e6) if n >= 1e5 else "{:.1f} kB".format(n / 1e3)


def _count(n):
    if not isinstance(n, (int, float)):
        return "–"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return "{:.2f} {}".format(n / div, unit)
    return str(int(n))


# --- tables -----------------------------------------------------------------------------

def routes_of(model, hosts, conversions):
    import backends
    found = [r for r, data in conversions.items() if model in data.get("models", {})]
    for doc in hosts:
        found += [r for r in doc.get("rows", {}).get(model, {}) if r not in found]
    order = list(backends.all_routes())   # v3, v4, v9, ...: history reads left to right
    return sorted(set(found), key=lambda r: (order.index(r) if r in order else len(order), r))


def models_of(hosts, conversions):
    found = []
    for data in conversions.values():
        found += [m for m in data.get("models", {}) if m not in found]
    for doc in hosts:
        found += [m for m in doc.get("rows", {}) if m not in found]
    return found


def conversion_of(model, route, hosts, conversions):
    """The conversion record: results/conversion-<route>.json first, else a host row's copy."""
    record = conversions.get(route, {}).get("models", {}).get(model)
    if record is not None:
        seconds = record.get("seconds") or {}
        work = sum(v for k, v in seconds.items() if k in ("export", "trace", "convert", "save"))
        return {"status": record.get("status"), "stage": record.get("stage"),
                "error": record.get("error"), "seconds": work if seconds else None,
                "file_bytes": record.get("file_bytes"),
                "count": record.get("layer_count", record.get("op_count")),
                "count_kind": "layers" if "layer_count" in record else "ops"}
    for doc in hosts:
        row = doc.get("rows", {}).get(model, {}).get(route)
        if row:
            conv = dict(row.get("conversion") or {})
            static = row.get("static") or {}
            conv.update(file_bytes=static.get("file_bytes"),
                        count=static.get("layer_count") or static.get("op_count"),
                        count_kind="layers" if static.get("layer_count") else "ops")
            if row.get("status") == "missing":
                conv.update(status="missing", error=row.get("reason"))
            return conv
    return {"status": "missing", "error": "no conversion record"}


def first_measured(hosts, model, route, pick):
    """The first host's measured value for a host-independent figure (the reference
    evaluator gives the same numbers everywhere); else the first reason."""
    reason = None
    for doc in hosts:
        row = doc.get("rows", {}).get(model, {}).get(route)
        if not row:
            continue
        if row.get("status") != "ok":
            return {"not_measured": row.get("reason") or row.get("status")}
        value = pick(row)
        if measured(value):
            return value
        reason = reason or value
    return reason or {"not_measured": "not benchmarked yet (run coreml-routes bench)"}


def model_table(model, hosts, conversions):
    headers = ["route", "converted?", "convert s", "size", "layers/ops", "parameters (spec)",
               "fp32 accuracy (reference, CPU)", "fp16 accuracy (emulated GPU/NE)",
               "fp16, full-scale 1 kHz tone", "timing"]
    for doc in hosts:
        headers += ["{} {}".format(doc["host"]["name"], cu) for cu in COMPUTE_UNITS]
    rows = []
    for route in routes_of(model, hosts, conversions):
        conv = conversion_of(model, route, hosts, conversions)
        ok = conv.get("status") == "ok"
        converted = "yes" if ok else ("no (missing)" if conv.get("status") == "missing"
                                      else "no: failed at {}".format(conv.get("stage")))
        static = first_measured(hosts, model, route, lambda r: r.get("static", {}).get("parameters"))
        precision = first_measured(hosts, model, route, lambda r: {"v": r.get("static", {}).get("weight_precision")})
        params = ("{} {}".format(_count(static["count"]), precision.get("v") if measured(precision) else "")
                  if measured(static) else why(static, 50) if ok else "–")
        line = [route, converted,
                "{:.2f}".format(conv["seconds"]) if conv.get("seconds") is not None else "–",
                _mb(conv.get("file_bytes")) if ok else "–",
                "{} {}".format(conv.get("count"), conv.get("count_kind")) if ok and conv.get("count") else "–",
                params]
        for precision_name in ("fp32", "fp16", "fp16_full_scale"):
            line.append(accuracy_text(first_measured(
                hosts, model, route, lambda r: r.get("reference", {}).get(precision_name))) if ok else "–")
        timed = [(doc["host"]["name"], doc.get("rows", {}).get(model, {}).get(route)) for doc in hosts]
        line.append("; ".join("{}: {}".format(name, timing_text(row)) for name, row in timed
                              if row and row.get("status") == "ok") or "–")
        for doc in hosts:
            row = doc.get("rows", {}).get(model, {}).get(route)
            for cu in COMPUTE_UNITS:
                if not ok:
                    line.append("–")
                elif not row:
                    line.append("not measured: not benchmarked on this host")
                elif row.get("status") != "ok":
                    line.append(why({"not_measured": row.get("reason") or "artifact missing"}))
                else:
                    line.append(device_text(row["coreml"]["compute_units"][cu]))
        rows.append(line)
    return headers, rows


def failures_table(hosts, conversions):
    seen, rows = set(), []
    for route, data in conversions.items():
        for model, record in data.get("models", {}).items():
            if record.get("status") != "ok":
                seen.add((model, route))
                rows.append([model, route, record.get("stage") or "?", record.get("error") or "no error recorded"])
    for doc in hosts:
        for model, routes in doc.get("rows", {}).items():
            for route, row in routes.items():
                if row.get("status") != "ok" and (model, route) not in seen:
                    seen.add((model, route))
                    conv = row.get("conversion") or {}
                    rows.append([model, route, conv.get("stage") or row.get("status"),
                                 conv.get("error") or row.get("reason")])
    return ["model", "route", "stage", "reason"], rows


def baselines_table(hosts, conversions):
    all_routes = []
    for doc in hosts:
        for routes in doc.get("rows", {}).values():
            all_routes += [r for r in routes if r not in all_routes]
    headers = ["host", "model", "timing", "MACs (PyTorch-side)", "PyTorch params", "PyTorch eager CPU",
               "onnxruntime CPU (v3 ONNX)"] + ["reference evaluator {}".format(r) for r in all_routes]
    rows = []
    for doc in hosts:
        for model, base in doc.get("baselines", {}).items():
            blocks = [base.get("pytorch_cpu"), base.get("onnxruntime_cpu")] + [
                row["reference"]["latency"] for row in doc.get("rows", {}).get(model, {}).values()
                if row.get("status") == "ok"]
            timings = []
            for block in blocks:   # each figure was timed in its own run: say every way used
                if measured(block) and runs_text(block) not in timings:
                    timings.append(runs_text(block))
            line = [doc["host"]["name"], model, "; ".join(timings) or "–",
                    _count(base.get("macs", {}).get("count")),
                    _count(base.get("parameters", {}).get("count")),
                    latency_text(base.get("pytorch_cpu")), _ort_text(base.get("onnxruntime_cpu"))]
            for route in all_routes:
                row = doc.get("rows", {}).get(model, {}).get(route)
                if row is None:
                    line.append("not measured: not in this run")
                elif row.get("status") != "ok":
                    line.append(why({"not_measured": row.get("reason")}, 60))
                else:
                    line.append(latency_text(row["reference"]["latency"]))
            rows.append(line)
    return headers, rows


def _ort_text(block):
    text = latency_text(block)
    if measured(block) and block.get("accuracy"):
        text += "; vs PyTorch: " + accuracy_text(block["accuracy"])
    return text


def hosts_table(hosts):
    # No file-wide "latency runs": rows of one file come from different runs (see timing).
    rows = [[d["host"]["name"], d["host"].get("os"), d["host"].get("machine"), d["host"].get("cpu"),
             ", ".join("{} {}".format(k, v) for k, v in sorted(d["host"].get("toolchain", {}).items())),
             d.get("updated", "")] for d in hosts]
    return ["host", "OS", "machine", "CPU", "toolchain", "updated"], rows


# --- the page ---------------------------------------------------------------------------

def render(hosts, conversions, out_dir):
    """Write README.md and the PNGs into ``out_dir``; return the README path."""
    from tabulate import tabulate
    from bench import plots

    def table(headers, rows):
        return tabulate(rows, headers=headers, tablefmt="github") if rows else "_none_"

    models = models_of(hosts, conversions)
    pngs = plots.write_all(hosts, models, out_dir)
    lines = ["# Results", "",
             "Generated by `coreml-routes report` from `results/*.json`; do not edit by hand.",
             "Accuracy is against PyTorch's outputs (golden.npz). fp32 and fp16 come from the "
             "reference evaluator (`coreml_reference`): fp16 *emulates* GPU / Neural Engine float16; "
             "tolerances and their reasons are in `coreml_reference/metrics.py`. Compute-unit columns "
             "are real Core ML on that host (macOS only). Host latency: median (p90, min) in ms; Core ML "
             "latency: the ModelBench mean (min, max of the kept predictions) in ms, after load time "
             "and the first prediction, each timed once. How each row was timed is in its `timing` "
             "column.", "",
             "## Hosts", "", table(*hosts_table(hosts)), ""]
    for model in models:
        lines += ["## {}".format(model), ""]
        base = next((d["baselines"][model] for d in hosts if model in d.get("baselines", {})), None)
        if base and "parameters" in base:
            lines += ["PyTorch module: {} parameters, {} multiply-accumulates per forward "
                      "({}).".format(_count(base["parameters"]["count"]), _count(base["macs"]["count"]),
                                     base["macs"]["source"]), ""]
        lines += [table(*model_table(model, hosts, conversions)), ""]
    lines += ["## Failures", "", table(*failures_table(hosts, conversions)), "",
              "## Host baselines", "", table(*baselines_table(hosts, conversions)), "",
              "## Plots", ""]
    lines += ["![{}]({})".format(title, name) for title, name in pngs] or ["_no plots: no results_"]
    path = os.path.join(out_dir, "README.md")
    tmp = path + ".tmp-{}".format(os.getpid())
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
