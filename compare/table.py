"""The compare table and recommendation, as the terminal and compare.md show them."""
from __future__ import annotations

import re

from tabulate import tabulate

from bench.units import human_bytes
from compare import rules

HEADERS = ["route", "runtime", "status", "target (spec)", "type", "may run on", "size",
           "as typed: SNR / max err", "fp16 (emulated)", "convert s"]


def runtime_cell(row):
    """``Core ML``, ``Core AI``, or ``ExecuTorch + Core ML (95% ops in Core ML)``."""
    runtime = row.get("runtime") or "Core ML"
    et = row.get("executorch") or {}
    if et.get("total_ops"):
        runtime += " ({:.0%} ops in Core ML)".format(et.get("delegated_ops", 0) / float(et["total_ops"]))
    return runtime


def _target_cell(row):
    if row.get("spec_version"):
        return "{} ({})".format(row.get("target"), row.get("spec_version"))
    return str(row.get("target"))


def cast_only(row):
    """An fp32-typed ML Program: Core ML runs it in float32 on the CPU and GPU and never on the
    Neural Engine, so its fp16 figure says what a cast to float16 would do, not a device."""
    return row.get("model_type") == "mlProgram" and row.get("precision") == "fp32"


def cells(route, row):
    if row["status"] != "ok":
        status = row["status"] if row["status"] == "not applicable" else "failed ({})".format(row.get("stage"))
        return [route, runtime_cell(row), status, "", "", "", "", "", "", _seconds(row)]
    verified = (row.get("verified") or {}).get("status")
    fp32 = "not evaluated"
    if row["fp32"].get("snr_db") is not None:
        fp32 = "{} dB / {}".format(_num(row["fp32"].get("snr_db")), _num(row["fp32"].get("max_abs_error")))
    fp16 = row.get("fp16") or {}
    if "not_measured" in fp16:
        fp16_cell = "not evaluated"
    elif fp16.get("first_nonfinite"):
        fp16_cell = "overflow: " + rules.fp16_problem(row)
    else:
        fp16_cell = "{} dB{}".format(_num(fp16.get("snr_db")), "" if fp16.get("within_tolerance") else " (low)")
    if "not_measured" not in fp16 and cast_only(row):
        fp16_cell += " if cast to fp16"
    return [route, runtime_cell(row), "ok, {}".format(verified), _target_cell(row),
            row.get("model_type"), " ".join(row.get("compute_units") or []),
            human_bytes(row.get("size_bytes") or 0), fp32, fp16_cell,
            _seconds(row)]


# Where a flexible input may run (Apple's engineers, developer forum thread 724930; the
# coremltools guide on flexible inputs says the same).
NE_RANGE = ("a range runs on the Neural Engine only at its default shape, other shapes on the "
            "CPU / GPU (Apple developer forum thread 724930)")
NE_ENUMERATED = "every enumerated shape may run on the Neural Engine (forum thread 724930)"


def shapes_lines(doc):
    """Per route, how each input ended up and where it may run, when any input is flexible
    (or was asked flexible and was not converted so)."""
    rows = [(r, row) for r, row in doc["routes"].items() if row.get("input_shapes")]
    if not any(not str(t).startswith("fixed ") or "asked" in str(t)
               for _, row in rows for t in row["input_shapes"].values()):
        return []
    lines = ["input shapes:"]
    for route, row in rows:
        notes = row.get("input_shapes_notes") or {}
        for name, text in row["input_shapes"].items():
            line = "  - {}: {} {}".format(route, name, text)
            where = _where(route, row, text)
            if where:
                line += "; " + where
            if notes.get(name):
                line += " ({})".format(notes[name])
            lines.append(line)
    return lines


def _where(route, row, text):
    runtime = row.get("runtime") or "Core ML"
    if "Core ML" not in runtime or str(text).startswith("fixed"):
        return ""
    if str(text).startswith("range"):
        return NE_RANGE
    if str(text).startswith("enumerated"):
        return NE_ENUMERATED
    return ""


def render(doc, fmt="simple", limit=240):
    """Table, then the recommendation and why not for every other route. A variant that
    failed as its base route did is folded into the base route's row and line. ``limit``:
    reasons are cut to that many characters (None: whole, as compare.md has room)."""
    folded = folded_variants(doc["routes"])
    table = tabulate([cells(_label(r, folded), row) for r, row in doc["routes"].items()
                      if r not in folded["into"]], HEADERS, tablefmt=fmt, disable_numparse=True)
    lines = [table, ""]
    if doc["recommended"]:
        lines.append("recommended: {}".format(doc["recommended"]))
    else:
        lines.append("recommended: none")
    lines += ["  - " + tidy_numbers(r) for r in doc["reasons"]]
    lines += shapes_lines(doc)
    others = [(_label(r, folded), row["why_not"]) for r, row in doc["routes"].items()
              if row.get("why_not") and r not in folded["into"]]
    if others:
        lines.append("not recommended:")
        lines += ["  - {}: {}".format(r, _one_line(tidy_numbers(why), limit)) for r, why in others]
    lines += stage_lines(doc, fmt)
    return "\n".join(lines)


STAGES = ("env", "start", "toolchain", "build", "golden", "convert", "verify", "fp16")


def stage_lines(doc, fmt="simple"):
    """Seconds per stage and route (``compare.stage_seconds``): the toolchain's import and
    the converter are the toolchain's own time; the rest is ours."""
    rows = [(r, row["stage_seconds"]) for r, row in doc["routes"].items() if row.get("stage_seconds")]
    if not rows:
        return []
    table = tabulate([[r] + [_stage(s.get(k)) for k in STAGES] + [_stage(sum(s.values()))]
                      for r, s in rows], ["seconds"] + list(STAGES) + ["total"], tablefmt=fmt,
                     disable_numparse=True)
    caption = ("seconds per stage (toolchain and convert are the toolchain's own; routes run "
               "{} at a time):".format(doc.get("jobs", 2)))
    return ["", caption] + ([] if fmt == "simple" else [""]) + [table]   # Markdown: a blank line


def _stage(value):
    return "" if value is None else "{:.1f}".format(value)


def folded_variants(routes):
    """{"into": {variant row: base route}, "of": {base route: [variant names]}} for variant
    rows (``route+variant``) that did not convert, in the same way (status and stage) as
    their base route: one line says it for all of them."""
    into, of = {}, {}
    for name, row in routes.items():
        base, _, variant = name.partition("+")
        parent = routes.get(base)
        if not variant or parent is None or parent["status"] == "ok":
            continue
        if row["status"] == parent["status"] and row.get("stage") == parent.get("stage"):
            into[name] = base
            of.setdefault(base, []).append(variant)
    return {"into": into, "of": of}


def _label(route, folded):
    variants = folded["of"].get(route)
    if not variants:
        return route
    return "{} (and +{})".format(route, ", +".join(variants))


_LONG_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d{5,}(?:[eE][-+]?\d+)?(?![\w.])")


def tidy_numbers(text):
    """Floats printed at full precision (``SNR 5.769641316527144 dB``) as the table prints
    them (``5.8``); other text unchanged."""
    return _LONG_FLOAT.sub(lambda m: _num(float(m.group(0))), str(text))


def markdown(doc):
    lines = ["# {} — which route to ship".format(doc["model"]), "",
             "Source `{}`; weights: {}; --min-target: {}.".format(
                 doc["source"], doc["weights"], doc["min_target"] or "not given"), "",
             render(doc, fmt="github", limit=None), "", "Rules, in order:", ""]
    lines += ["{}. {}".format(i, rule) for i, rule in enumerate(doc["rules"], 1)]
    lines += ["", "\"As typed\": the reference evaluator runs the model as its file types it (an "
                  "fp16 ML Program in fp16, everything else in fp32, as Core ML's CPU does). "
                  "\"fp16 (emulated)\": the evaluator's emulation of GPU / Neural Engine float16; "
                  "for an fp32-typed ML Program (\"if cast to fp16\") what casting it to "
                  "float16 would do: Core ML runs such a program in float32 on the CPU and GPU, "
                  "never on the Neural Engine. "
                  "\"May run on\": Apple's typed-execution rules. Core ML itself is not measured "
                  "here (needs macOS)."]
    return "\n".join(lines) + "\n"


def _one_line(text, limit=240):
    text = " ".join(str(text).split())
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def _seconds(row):
    return "{:.1f}".format(row["seconds"]) if isinstance(row.get("seconds"), float) else ""


def _num(x):
    if isinstance(x, float):
        return "{:.3g}".format(x) if abs(x) < 1 else "{:.1f}".format(x)
    return str(x)
