"""PNG views of the results: latency per route and compute unit, accuracy per route and
precision. One panel per model; series that hold no figure are named in a note instead."""
from __future__ import annotations

import math
import os

from bench.cells import measured, worst_snr
from bench.macos import COMPUTE_UNITS

SNR_CAP_DB = 150.0   # an exact match (inf dB) is drawn at this height


def write_all(hosts, models, out_dir):
    """-> [(title, file name)] of the PNGs written into ``out_dir``."""
    if not hosts or not models:
        return []
    import matplotlib
    matplotlib.use("Agg")   # files only, no display
    written = []
    # Linear axes from zero: bar heights compare as the figures do (a log axis cut above zero
    # made a 5 % gap look large).
    for title, name, collect, ylabel in (
            ("Latency per route and compute unit", "latency.png", _latency_series, "ms (median)"),
            ("Accuracy per route and precision", "accuracy.png", _accuracy_series,
             "worst SNR over outputs (dB)")):
        _figure(hosts, models, collect, title, ylabel, os.path.join(out_dir, name))
        written.append((title, name))
    return written


def _routes(hosts, model):
    found = []
    for doc in hosts:
        found += [r for r in doc.get("rows", {}).get(model, {}) if r not in found]
    return found


def _latency_series(hosts, model, routes):
    """{series label: [median ms or None per route]}, plus reasons for empty series."""
    series, missing = {}, {}
    for doc in hosts:
        host = doc["host"]["name"]
        rows = doc.get("rows", {}).get(model, {})
        picks = {"reference evaluator": lambda r: r["reference"]["latency"]}
        for cu in COMPUTE_UNITS:
            picks["Core ML " + cu] = lambda r, cu=cu: r["coreml"]["compute_units"][cu].get("latency") \
                if measured(r["coreml"]["compute_units"][cu]) else r["coreml"]["compute_units"][cu]
        for label, pick in picks.items():
            values, reason = [], None
            for route in routes:
                row = rows.get(route)
                cell = pick(row) if row and row.get("status") == "ok" else None
                if measured(cell):
                    values.append(cell["median"])
                else:
                    values.append(None)
                    reason = reason or (cell or {}).get("not_measured")
            _add(series, missing, "{}: {}".format(host, label), values, reason)
    lines = {}   # route-independent host baselines: drawn across the panel
    for doc in hosts:
        base = doc.get("baselines", {}).get(model, {})
        for key, label in (("pytorch_cpu", "PyTorch eager CPU"), ("onnxruntime_cpu", "onnxruntime CPU")):
            if measured(base.get(key)):
                lines["{}: {}".format(doc["host"]["name"], label)] = base[key]["median"]
    return series, missing, lines


def _accuracy_series(hosts, model, routes):
    series, missing = {}, {}
    picks = {"reference fp32": lambda r: r["reference"]["fp32"],
             "reference fp16 (emulated)": lambda r: r["reference"]["fp16"]}
    for precision, pick in picks.items():
        values, reason = [], None
        for route in routes:
            cell = _first(hosts, model, route, pick)
            values.append(worst_snr(cell["outputs"]) if measured(cell) else None)
            reason = reason or (None if measured(cell) else (cell or {}).get("not_measured"))
        _add(series, missing, precision, values, reason)
    for doc in hosts:
        rows = doc.get("rows", {}).get(model, {})
        for cu in COMPUTE_UNITS:
            values, reason = [], None
            for route in routes:
                row = rows.get(route)
                cell = row["coreml"]["compute_units"][cu] if row and row.get("status") == "ok" else None
                values.append(worst_snr(cell["accuracy"]) if measured(cell) else None)
                reason = reason or (None if measured(cell) else (cell or {}).get("not_measured"))
            _add(series, missing, "{}: Core ML {}".format(doc["host"]["name"], cu), values, reason)
    return series, missing, {}


def _first(hosts, model, route, pick):
    cell = None
    for doc in hosts:
        row = doc.get("rows", {}).get(model, {}).get(route)
        if row and row.get("status") == "ok":
            cell = pick(row)
            if measured(cell):
                return cell
    return cell


def _add(series, missing, label, values, reason):
    if any(v is not None for v in values):
        series[label] = values
    else:
        missing.setdefault(reason or "no data", []).append(label)


def _figure(hosts, models, collect, title, ylabel, path):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(models), 1, figsize=(10, 3.6 * len(models)), squeeze=False)
    for ax, model in zip(axes[:, 0], models):
        routes = _routes(hosts, model)
        series, missing, lines = collect(hosts, model, routes)
        width = 0.8 / max(1, len(series))
        for i, (label, values) in enumerate(series.items()):
            xs = [r + i * width for r in range(len(routes))]
            heights = [_height(v) for v in values]
            ax.bar(xs, [h or 0 for h in heights], width, label=label)
            for x, v in zip(xs, values):
                # say what is missing where a bar would be, rather than draw a zero bar
                if v is None or v == -math.inf:
                    ax.text(x, 0.02, "n/m" if v is None else "inf/NaN", ha="center", va="bottom",
                            fontsize=7, rotation=90, transform=ax.get_xaxis_transform())
        for (label, value), style in zip(lines.items(), ["--", ":", "-.", "--"] * len(lines)):
            ax.axhline(value, linestyle=style, color="gray", label=label)
        ax.set_xlim(-0.6, len(routes) - 0.2)
        ax.set_xticks([r + 0.4 - width / 2 for r in range(len(routes))])
        ax.set_xticklabels(routes)
        ax.set_title(model)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        if series or lines:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        notes = ["not measured ({}): {}".format(reason[:70], ", ".join(labels))
                 for reason, labels in missing.items()]
        if notes:
            ax.text(0.0, -0.28, "\n".join(notes)[:600], transform=ax.transAxes, fontsize=7, va="top")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _height(value):
    if value is None or value == -math.inf:   # -inf dB: the output holds inf/NaN
        return None
    return min(value, SNR_CAP_DB) if not math.isinf(value) else SNR_CAP_DB   # inf dB = exact
