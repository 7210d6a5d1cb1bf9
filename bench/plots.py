"""PNG views of the results. Each picture answers one question:

- ``accuracy.png``: how close to PyTorch is each artifact? The reference evaluator's worst SNR
  over the outputs, as typed and in fp16 emulation (plus Core ML on a Mac, once measured).
- ``latency.png``: how fast does each artifact run on Core ML, per compute unit? Only a Mac
  measures it; until a Mac's results are there the picture says so, in words.
- ``evaluator-speed.png``: how fast is the reference evaluator on each benchmark host? The
  time our own numpy evaluator takes to verify an artifact there, beside PyTorch and
  onnxruntime on the same host: not a route's latency on a device.

Horizontal bars, one labelled row per artifact (labels never overprint), every bar with its
figure written beside it. A bar longer than its axis (an SNR above ``SNR_CAP_DB``, an exact
match at inf dB, a latency far above the rest) is cut at the axis with a visible break mark
and its true value in text. A row with no figure says why where the bar would be."""
from __future__ import annotations

import math
import os

from bench.cells import measured, unit_cell, worst_snr
from bench.macos import COMPUTE_UNITS

SNR_CAP_DB = 150.0        # the accuracy axis ends here; above it (inf dB: exact) a bar is cut
OUTLIER_FACTOR = 10.0     # a latency above this many times its panel's median is cut
CUT_GID = "cut-mark"      # the gid of every break mark (tests find them by it)

# (title in the picture, file name, its alt text in results/README.md)
ACCURACY = ("How close to PyTorch is each artifact? Worst SNR over its outputs (dB): the "
            "reference evaluator on Linux (et: the ExecuTorch program with its partitions by the "
            "evaluator; coreai: Apple's Core AI interpreter), and Core ML where a Mac measured it",
            "accuracy.png",
            "Accuracy against PyTorch per artifact")
LATENCY = ("How fast does each artifact run on Core ML? Latency per compute unit on a Mac",
           "latency.png", "Core ML latency per compute unit (measured on a Mac only)")
EVALUATOR = ("Reference evaluator's speed on the benchmark host (numpy): how long verifying "
             "takes there, not a route's latency on a device", "evaluator-speed.png",
             "Reference evaluator's speed on the benchmark host (not device latency)")
NEEDS_MAC = "not measured: needs macOS"


def write_all(hosts, models, out_dir, artifacts=None, notes=None):
    """-> [(title, file name)] of the PNGs written into ``out_dir``.

    ``artifacts``: {model: [artifact names in display order]} (default: the host rows');
    ``notes``: {(model, artifact): why it has no figures} (e.g. its conversion failed)."""
    if not hosts or not models:
        return []
    import matplotlib
    matplotlib.use("Agg")   # files only, no display
    artifacts = dict(artifacts or {})
    for model in models:
        artifacts.setdefault(model, _routes(hosts, model))
    notes = notes or {}
    written = []
    for (title, name, alt), figure in ((ACCURACY, accuracy_panels), (LATENCY, device_panels),
                                  (EVALUATOR, evaluator_panels)):
        grid, empty = figure(hosts, models, artifacts, notes)
        path = os.path.join(out_dir, name)
        if grid:
            _draw(grid, title, path)
        else:
            _draw_message(title, empty, path)
        written.append((alt, name))
    return written


def _routes(hosts, model):
    found = []
    for doc in hosts:
        found += [r for r in doc.get("rows", {}).get(model, {}) if r not in found]
    return found


# --- what each picture shows ----------------------------------------------------------------

class Panel:
    """One axis: a bar (or a reason) per artifact."""

    def __init__(self, title, labels, values, reasons, unit, cap=None, lines=()):
        self.title, self.labels, self.values, self.reasons = title, labels, values, reasons
        self.unit, self.cap, self.lines = unit, cap, list(lines)


def _row_reason(doc, model, name, notes):
    """Why the host ``doc`` has no figure for this artifact, or None when it has a row."""
    if (model, name) in notes:
        return notes[(model, name)]
    row = doc.get("rows", {}).get(model, {}).get(name)
    if row is None:
        return "not benchmarked on {} (run coreml-routes bench)".format(doc["host"]["name"])
    if row.get("status") != "ok":
        return row.get("reason") or "no {} artifact ({})".format(name, row.get("status"))
    return None


def _column(hosts, model, names, notes, pick, first_host=False):
    """-> (values, reasons) for one panel: ``pick(row)`` gives a cell per ok row."""
    values, reasons = [], []
    for name in names:
        value, reason = None, None
        for doc in hosts:
            why = _row_reason(doc, model, name, notes)
            cell = None if why else pick(doc["rows"][model][name])
            if why is None and measured(cell):
                value = cell
                break
            reason = reason or why or (cell or {}).get("not_measured") or "no figure"
            if not first_host:
                break
        values.append(value)
        reasons.append(None if value is not None else reason)
    return values, reasons


def accuracy_panels(hosts, models, artifacts, notes):
    from coreml_reference.metrics import FP16_MIN_SNR_DB, FP32_MIN_SNR_DB

    def snr(result):
        return worst_snr(result["outputs"]) if measured(result) else None

    grid = []
    for model in models:
        names = artifacts[model]
        row = []
        for title, key, lines in (
                ("as typed (Core ML CPU's arithmetic)", "fp32",
                 [("fp32 tolerance ({:.0f} dB)".format(FP32_MIN_SNR_DB), FP32_MIN_SNR_DB),
                  ("fp16 tolerance ({:.0f} dB)".format(FP16_MIN_SNR_DB), FP16_MIN_SNR_DB)]),
                ("fp16 emulated (GPU / Neural Engine)", "fp16",
                 [("fp16 tolerance ({:.0f} dB)".format(FP16_MIN_SNR_DB), FP16_MIN_SNR_DB)])):
            cells, reasons = _column(hosts, model, names, notes,
                                     lambda r, key=key: r.get("reference", {}).get(key), first_host=True)
            row.append(Panel("{}: {}".format(model, title), names, [snr(c) if c else None for c in cells],
                             reasons, "dB", SNR_CAP_DB, lines))
        for doc in hosts:   # Core ML's own accuracy, where a Mac measured it
            for cu in COMPUTE_UNITS:
                cells, reasons = _column([doc], model, names, notes,
                                         lambda r, cu=cu: unit_cell(r["coreml"], cu)[0])
                if any(c is not None for c in cells):
                    row.append(Panel("{}: Core ML {} on {}".format(model, cu, doc["host"]["name"]), names,
                                     [worst_snr(c.get("accuracy", {})) if c else None for c in cells],
                                     reasons, "dB", SNR_CAP_DB))
        grid.append(row)
    return grid, None


def _device_latency(cell):
    block = cell.get("latency") or {}
    return block.get("mean") if "protocol" in block else block.get("median")


def device_panels(hosts, models, artifacts, notes):
    grid = []
    for model in models:
        row = []
        for doc in hosts:
            for cu in COMPUTE_UNITS:
                cells, reasons = _column([doc], model, artifacts[model], notes,
                                         lambda r, cu=cu: unit_cell(r["coreml"], cu)[0])
                if any(c is not None for c in cells):
                    values = [_device_latency(c) if c else None for c in cells]
                    row.append(Panel("{}: Core ML {} on {}".format(model, cu, doc["host"]["name"]),
                                     artifacts[model], values, reasons, "ms", _outlier_cap(values)))
        if row:
            grid.append(row)
    if grid:
        return grid, None
    names = ", ".join("{} ({})".format(d["host"]["name"], d["host"].get("os") or "?") for d in hosts)
    return None, [NEEDS_MAC,
                  "Core ML runs only on macOS: no Mac's results are in results/ yet.",
                  "Benchmarked hosts: {}.".format(names),
                  "On a Mac: tox -e bench measures CPU_ONLY, CPU_AND_GPU, CPU_AND_NE and ALL;",
                  "commit results/<host>.json, then run coreml-routes report (see docs/devices.md).",
                  "Until then, evaluator-speed.png shows this host's own timings (not Core ML's)."]


def evaluator_panels(hosts, models, artifacts, notes):
    grid = []
    for model in models:
        row = []
        for doc in hosts:
            cells, reasons = _column([doc], model, artifacts[model], notes,
                                     lambda r: r.get("reference", {}).get("latency"))
            if not any(c is not None for c in cells):
                continue
            values = [c["median"] if c else None for c in cells]
            base = doc.get("baselines", {}).get(model, {})
            lines = [("{} (same host)".format(label), base[key]["median"])
                     for key, label in (("pytorch_cpu", "PyTorch eager CPU"),
                                        ("onnxruntime_cpu", "onnxruntime CPU"))
                     if measured(base.get(key))]
            host = doc["host"]
            row.append(Panel("{}: on host {} ({}, {})".format(
                model, host["name"], host.get("os") or "?", host.get("cpu") or "?"),
                artifacts[model], values, reasons, "ms, median", _outlier_cap(values), lines))
        if row:
            grid.append(row)
    if grid:
        return grid, None
    return None, ["not measured: no host has timed the reference evaluator yet",
                  "Run coreml-routes bench, then coreml-routes report."]


def _outlier_cap(values):
    """An axis end for latencies: None (show every bar whole) unless one bar is more than
    OUTLIER_FACTOR times the panel's median, which would flatten the rest."""
    finite = sorted(v for v in values if v is not None and math.isfinite(v) and v > 0)
    if not finite:
        return None
    median = finite[len(finite) // 2]
    return OUTLIER_FACTOR * median if finite[-1] > OUTLIER_FACTOR * median else None


# --- drawing ----------------------------------------------------------------------------------

def value_text(value, unit):
    if value == math.inf:
        return "inf dB (exact)" if unit == "dB" else "inf"
    if unit == "dB":
        return "{:.1f} dB".format(value)
    return "{:.3g} ms".format(value)


def bar_layout(value, cap):
    """-> (bar length, cut?) for one value on an axis that ends at ``cap`` (None: no end)."""
    if value is None or value == -math.inf or (isinstance(value, float) and math.isnan(value)):
        return None, False
    if cap is not None and value > cap:
        return cap, True
    return value, False


def draw_bars(ax, panel):
    """Draw ``panel`` on ``ax``: one labelled row per artifact, top to bottom."""
    n = len(panel.labels)
    ys = list(range(n))
    lengths = [bar_layout(v, panel.cap) for v in panel.values]
    ax.barh(ys, [length or 0 for length, _ in lengths], height=0.7, color="#4c78a8")
    top = max([length for length, _ in lengths if length] + [x for _, x in panel.lines] + [1e-9])
    end = (panel.cap if any(cut for _, cut in lengths) else top) * 1.45
    ax.set_xlim(0, end)
    for y, value, (length, cut), reason in zip(ys, panel.values, lengths, panel.reasons):
        if length is None:
            text = "inf/NaN in an output" if value == -math.inf else (reason or "no figure")
            ax.text(end * 0.01, y, text if len(text) <= 70 else text[:69] + "…", va="center",
                    fontsize=6.5, color="#a03030" if value == -math.inf else "#555555", style="italic",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3})
            continue
        if cut:
            # an axis break across the bar's end: two white slashes, then the true value
            for dx in (0.955, 0.985):
                ax.plot([length * (dx - 0.012), length * (dx + 0.012)], [y + 0.38, y - 0.38],
                        color="white", linewidth=2.2, gid=CUT_GID, solid_capstyle="butt")
            label = "{} (bar cut at {})".format(value_text(value, panel.unit),
                                               value_text(panel.cap, panel.unit))
        else:
            label = value_text(value, panel.unit)
        ax.text(length + end * 0.01, y, label, va="center", fontsize=6.5)
    styles = ["--", ":", "-.", (0, (5, 1))]
    colors = ["#d62728", "#2ca02c", "#9467bd", "#8c564b"]
    for (label, x), style, color in zip(panel.lines, styles, colors):
        ax.axvline(x, linestyle=style, color=color, linewidth=1, label="{}: {}".format(
            label, value_text(x, panel.unit)) if panel.unit != "dB" else label)
    ax.set_yticks(ys)
    ax.set_yticklabels(panel.labels, fontsize=7)
    ax.set_ylim(n - 0.5, -0.5)   # first artifact on top
    ax.set_title(panel.title, fontsize=8.5, loc="left")
    ax.set_xlabel(panel.unit, fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    if panel.lines:   # below the axis, where it hides no bar
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=4.6,
                  ncol=2, frameon=False)


MAX_COLUMNS = 2   # panels side by side; a model with more (Core ML units on a Mac) wraps


def _draw(grid, title, path):
    import matplotlib.pyplot as plt
    grid = [row[i:i + MAX_COLUMNS] for row in grid for i in range(0, len(row), MAX_COLUMNS)]
    cols = max(len(row) for row in grid)
    import textwrap
    heights = [max(2.4, 0.2 * max(len(p.labels) for p in row) + 1.1) for row in grid]
    fig, axes = plt.subplots(len(grid), cols, figsize=(max(9.0, 1.4 + 4.6 * cols), sum(heights) + 0.8),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for r, row in enumerate(grid):
        for c in range(cols):
            if c < len(row):
                draw_bars(axes[r][c], row[c])
            else:
                axes[r][c].axis("off")
    fig.suptitle("\n".join(textwrap.wrap(title, 100)), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / (sum(heights) + 0.8)))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _draw_message(title, lines, path):
    """A picture that says, in words, why it holds no bars."""
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(9, 2.6))
    fig.text(0.5, 0.88, title, ha="center", fontsize=10)
    fig.text(0.5, 0.62, lines[0], ha="center", fontsize=18, color="#a03030", weight="bold")
    fig.text(0.5, 0.42, "\n".join(lines[1:]), ha="center", va="top", fontsize=8.5)
    fig.savefig(path, dpi=90)
    plt.close(fig)
