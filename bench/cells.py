"""Table cells: how one measured figure (or the reason it is missing) reads in a table.

Shared by the markdown tables (``bench.report``) and the plots (``bench.plots``)."""
from __future__ import annotations

import math

from bench.stats import protocol_text
from bench.units import human_bytes


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
    if isinstance(result, dict) and result.get("runner"):   # not the host's evaluator
        parts.append("by {}".format(result["runner"]))
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


# A Core AI row's cells (coreai.runtime specializes for one preferred compute unit kind)
# under the Core ML columns they stand closest to; Core AI has no "all units" choice.
CORE_AI_COLUMNS = {"CPU_ONLY": "CPU", "CPU_AND_GPU": "GPU", "CPU_AND_NE": "NE"}


def unit_cell(section, column):
    """-> (cell, unit name shown with a measured figure or None) for a Core ML compute-unit
    column (``CPU_ONLY`` ...) of a row's device section, whichever runtime the row has."""
    units = (section or {}).get("compute_units") or {}
    if column in units:
        return units[column], None
    kind = CORE_AI_COLUMNS.get(column)
    if kind in units:
        return units[kind], "Core AI " + kind
    if set(CORE_AI_COLUMNS.values()) <= set(units):
        return {"not_measured": "Core AI specializes for one compute unit kind (CPU, GPU or NE); "
                                "it has no {}".format(column)}, None
    return {"not_measured": "no {} cell in this row".format(column)}, None


def unit_text(section, column):
    cell, name = unit_cell(section, column)
    text = device_text(cell)
    return "{}: {}".format(name, text) if name and measured(cell) else text


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


def size_text(n):
    if not isinstance(n, (int, float)):
        return "–"
    return human_bytes(n)


def one_line(text, limit=160):
    """The first line of a (multi-line) message, for a table cell; the JSON keeps it whole."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if len(first) > limit:
        return first[:limit - 1] + "…"
    return first + " …" if len(lines) > 1 else first


def count_text(n):
    if not isinstance(n, (int, float)):
        return "–"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return "{:.2f} {}".format(n / div, unit)
    return str(int(n))
