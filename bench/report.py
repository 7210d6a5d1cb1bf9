"""results/*.json -> results/README.md (tabulate tables) and PNG plots beside it.

Views only: every figure shown comes from the JSON files; a cell that holds no figure
says why, in words."""
from __future__ import annotations

import os

from backends.builds import write_text_atomic
from bench.cells import (accuracy_text, count_text, latency_text, measured, one_line,
                         runs_text, size_text, timing_text, unit_text, why)
from bench.artifacts import compute_units, converter_seconds
from bench.macos import COMPUTE_UNITS


# --- tables -----------------------------------------------------------------------------

def routes_of(model, hosts, conversions):
    import backends
    found = [r for r, data in conversions.items() if model in data.get("models", {})]
    for doc in hosts:
        found += [r for r in doc.get("rows", {}).get(model, {}) if r not in found]
    from backends.builds import split_folder_name as split
    from backends.variants import SUMMARIES
    order, kinds = list(backends.all_routes()), list(SUMMARIES)   # history reads left to right

    def key(name):
        route, variant = split(name)
        return (order.index(route) if route in order else len(order), route,
                -1 if variant is None else kinds.index(variant) if variant in kinds else len(kinds))
    return sorted(set(found), key=key)


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
        return {"status": record.get("status"), "stage": record.get("stage"),
                "error": record.get("error"), "seconds": converter_seconds(record),
                "file_bytes": record.get("file_bytes"), "compute_units": compute_units(record),
                "count": record.get("layer_count", record.get("op_count")),
                "count_kind": "layers" if "layer_count" in record else "ops"}
    for doc in hosts:
        row = doc.get("rows", {}).get(model, {}).get(route)
        if row:
            conv = dict(row.get("conversion") or {})
            static = row.get("static") or {}
            conv.setdefault("compute_units", static.get("compute_units"))
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


def stress_input(model, hosts, conversions):
    """The name of the model's fp16 stress input, or None when no route of it has one (the
    stress case applies to waveform models only)."""
    for route in routes_of(model, hosts, conversions):
        cell = first_measured(hosts, model, route, lambda r: r.get("reference", {}).get("fp16_full_scale"))
        if measured(cell):
            return cell.get("input") or "stress input"
    return None


AS_TYPED = "as typed (reference)"
FP16_EMULATED = "fp16 emulated (reference, GPU/NE)"
MAY_RUN_ON = "may run on (Apple's rules)"


def units_text(conv):
    units = conv.get("compute_units")
    return " ".join(units) if units else "–"


def model_table(model, hosts, conversions):
    """One row per route's default artifact; variants have their own table."""
    stress = stress_input(model, hosts, conversions)
    precisions = ["fp32", "fp16"] + (["fp16_full_scale"] if stress else [])
    headers = ["route", "converted?", "convert s", "size", "layers/ops", "parameters (spec)",
               MAY_RUN_ON, AS_TYPED, FP16_EMULATED]
    headers += (["fp16, " + stress] if stress else []) + ["timing"]
    for doc in hosts:
        headers += ["{} {}".format(doc["host"]["name"], cu) for cu in COMPUTE_UNITS]
    rows = []
    for route in [r for r in routes_of(model, hosts, conversions) if "+" not in r]:
        conv = conversion_of(model, route, hosts, conversions)
        ok = conv.get("status") == "ok"
        converted = "yes" if ok else ("no (missing)" if conv.get("status") == "missing"
                                      else "no: failed at {}".format(conv.get("stage")))
        static = first_measured(hosts, model, route, lambda r: r.get("static", {}).get("parameters"))
        precision = first_measured(hosts, model, route, lambda r: {"v": r.get("static", {}).get("weight_precision")})
        params = ("{} {}".format(count_text(static["count"]), precision.get("v") if measured(precision) else "")
                  if measured(static) else why(static, 50) if ok else "–")
        line = [route, converted,
                "{:.2f}".format(conv["seconds"]) if conv.get("seconds") is not None else "–",
                size_text(conv.get("file_bytes")) if ok else "–",
                "{} {}".format(conv.get("count"), conv.get("count_kind")) if ok and conv.get("count") else "–",
                params, units_text(conv) if ok else "–"]
        for precision_name in precisions:
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
                    line.append(unit_text(row["coreml"], cu))
        rows.append(line)
    return headers, rows


def variants_table(model, hosts, conversions):
    """Every artifact of ``model`` (each route's default and its variants) side by side:
    what users ship, how big, where it may run, and how far from PyTorch."""
    from backends.builds import split_folder_name as split
    from backends.variants import SUMMARIES
    names = routes_of(model, hosts, conversions)
    if not any("+" in n for n in names):
        return None
    headers = ["artifact", "what", "size", MAY_RUN_ON, "weights (spec)", AS_TYPED, FP16_EMULATED,
               "top-5 vs PyTorch (as typed)"]
    rows = []
    for name in names:
        route, variant = split(name)
        conv = conversion_of(model, name, hosts, conversions)
        ok = conv.get("status") == "ok"
        what = SUMMARIES.get(variant, variant) if variant else "default of route {}".format(route)
        precision = first_measured(hosts, model, name, lambda r: {"v": r.get("static", {}).get("weight_precision")})
        as_typed = first_measured(hosts, model, name, lambda r: r.get("reference", {}).get("fp32"))
        fp16 = first_measured(hosts, model, name, lambda r: r.get("reference", {}).get("fp16"))
        if not ok:
            rows.append([name, what, "–", "–", "–", "no: failed at {}".format(conv.get("stage"))
                         if conv.get("status") != "missing" else "no (missing)", "–", "–"])
            continue
        rows.append([name, what, size_text(conv.get("file_bytes")), units_text(conv),
                     precision["v"] if measured(precision) else why(precision, 50),
                     accuracy_text(as_typed), accuracy_text(fp16), top5_text(as_typed)])
    return headers, rows


def top5_text(result):
    if not measured(result):
        return "–"
    for figures in result.get("outputs", {}).values():
        if measured(figures) and "top5_agreement" in figures:
            return "{:d}/5".format(round(figures["top5_agreement"] * 5))
    return "– (no label output)"


def failures_table(hosts, conversions):
    seen, rows = set(), []
    for route, data in conversions.items():
        for model, record in data.get("models", {}).items():
            if record.get("status") != "ok":
                seen.add((model, route))
                rows.append([model, route, record.get("stage") or "?",
                             one_line(record.get("error") or "no error recorded")])
    for doc in hosts:
        for model, routes in doc.get("rows", {}).items():
            for route, row in routes.items():
                if row.get("status") != "ok" and (model, route) not in seen:
                    seen.add((model, route))
                    conv = row.get("conversion") or {}
                    rows.append([model, route, conv.get("stage") or row.get("status"),
                                 one_line(conv.get("error") or row.get("reason") or "no reason recorded")])
    return ["model", "route", "stage", "reason (first line; whole error in the JSON)"], rows


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
                    count_text(base.get("macs", {}).get("count")),
                    count_text(base.get("parameters", {}).get("count")),
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


# --- the plots' rows ---------------------------------------------------------------------

def plot_rows(models, hosts, conversions):
    """-> ({model: artifacts in table order}, {(model, artifact): why it has no figures}) for
    ``bench.plots``: the plots list the rows the tables list, a failed conversion as such."""
    artifacts, notes = {}, {}
    for model in models:
        artifacts[model] = routes_of(model, hosts, conversions)
        for name in artifacts[model]:
            conv = conversion_of(model, name, hosts, conversions)
            if conv.get("status") == "missing":
                notes[(model, name)] = "no artifact: {}".format(one_line(conv.get("error") or "missing"))
            elif conv.get("status") != "ok":
                notes[(model, name)] = "conversion failed at {}".format(conv.get("stage") or "?")
    return artifacts, notes


# --- the page ---------------------------------------------------------------------------

def markdown(headers, rows):
    from tabulate import tabulate
    return tabulate(rows, headers=headers, tablefmt="github") if rows else "_none_"


def render(hosts, conversions, out_dir):
    """Write README.md and the PNGs into ``out_dir``; return the README path."""
    from bench import plots
    table = markdown

    models = models_of(hosts, conversions)
    pngs = plots.write_all(hosts, models, out_dir, *plot_rows(models, hosts, conversions))
    lines = ["# Results", "",
             "Generated by `coreml-routes report` from `results/*.json`; do not edit by hand.",
             "Accuracy is against PyTorch's outputs (golden.npz), from the reference evaluator "
             "(`coreml_reference`). *As typed*: each op runs in the type the program declares — "
             "float32 for NeuralNetworks and fp32 ML Programs (Core ML on the CPU); for fp16 ML "
             "Programs (coremltools' default) float16 storage and a float16 result per op, with the "
             "program's casts (accumulations inside an op in float32). *fp16 emulated*: weights "
             "and every result rounded to float16, as the GPU / Neural Engine run any model. "
             "*May run on*: the compute units Core ML may use by Apple's typed-execution rules "
             "(an fp32 ML Program never runs on the Neural Engine). Variants (`<route>+<variant>`) "
             "are built by the route's own toolchain (`convert --precision` / `--compress`). "
             "Tolerances and their reasons are in `coreml_reference/metrics.py`. Compute-unit columns "
             "are real Core ML on that host (macOS only). Host latency: median (p90, min) in ms; Core ML "
             "latency: the ModelBench mean (min, max of the kept predictions) in ms, after load time "
             "and the first prediction, each timed once. How each row was timed is in its `timing` "
             "column. Accuracy columns hold golden.npz's first case (the example input); "
             "the tone column is the full-scale 1 kHz tone run through PyTorch on the bench host. "
             "Routes `et` and `coreai` are run on Linux by their own runtimes in their envs, as "
             "each cell says: an ExecuTorch program with its Core ML partitions by the reference "
             "evaluator and the other ops by torch (fp16 emulated in the partitions); a Core AI "
             "asset by Apple's Core AI interpreter, which has no fp16 emulation (those cells say "
             "so). On a Mac, `et`'s compute-unit columns are ExecuTorch's pybindings with the "
             "Core ML delegate; `coreai`'s CPU_ONLY / CPU_AND_GPU / CPU_AND_NE columns are Core "
             "AI's CPU / GPU / NE specializations (macOS 27 and later).", "",
             "## Hosts", "", table(*hosts_table(hosts)), ""]
    for model in models:
        lines += ["## {}".format(model), ""]
        base = next((d["baselines"][model] for d in hosts if model in d.get("baselines", {})), None)
        if base and "parameters" in base:
            lines += ["PyTorch module: {} parameters, {} multiply-accumulates per forward "
                      "({}).".format(count_text(base["parameters"]["count"]), count_text(base["macs"]["count"]),
                                     base["macs"]["source"]), ""]
        lines += [table(*model_table(model, hosts, conversions)), ""]
        variant_rows = variants_table(model, hosts, conversions)
        if variant_rows:
            lines += ["### {}: variants".format(model), "", table(*variant_rows), ""]
    lines += ["## Failures", "", table(*failures_table(hosts, conversions)), "",
              "## Host baselines", "", table(*baselines_table(hosts, conversions)), "",
              "## Plots", ""]
    lines += ["![{}]({})".format(title, name) for title, name in pngs] or ["_no plots: no results_"]
    path = os.path.join(out_dir, "README.md")
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


# --- the project README's sample ----------------------------------------------------------

SAMPLE_MODEL = "pann_mobilenetv1"
SAMPLE_START, SAMPLE_END = "<!-- sample-table -->", "<!-- /sample-table -->"
SAMPLE_DROPPED = ("convert s", "parameters (spec)", "timing")


def sample(hosts, conversions):
    """The sample for the project README: the headline model's table, with each host's
    CPU_ONLY column only (the full table has every compute unit)."""
    models = models_of(hosts, conversions)
    if not models:
        return None
    model = SAMPLE_MODEL if SAMPLE_MODEL in models else models[0]
    headers, rows = model_table(model, hosts, conversions)
    others = tuple(cu for cu in COMPUTE_UNITS if cu != "CPU_ONLY")
    keep = [i for i, h in enumerate(headers)
            if h not in SAMPLE_DROPPED and not h.endswith(others)]
    table = markdown([headers[i] for i in keep], [[row[i] for i in keep] for row in rows])
    return "\n".join([
        "`{}` (generated by `coreml-routes report`):".format(model), "", table, "",
        "Other compute units ({}), every model, failures, host baselines and plots: "
        "[results/README.md](results/README.md).".format(", ".join(others))])


def has_sample_markers(readme):
    with open(readme) as f:
        text = f.read()
    return SAMPLE_START in text and SAMPLE_END in text.split(SAMPLE_START, 1)[1]


def write_sample(readme, text):
    """Replace what lies between the sample markers of ``readme``; the rest stays as is."""
    with open(readme) as f:
        before, rest = f.read().split(SAMPLE_START, 1)
    after = rest.split(SAMPLE_END, 1)[1]
    write_text_atomic(readme, before + SAMPLE_START + "\n" + text + "\n" + SAMPLE_END + after)

