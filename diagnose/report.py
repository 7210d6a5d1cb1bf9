"""The diagnosis as text for the terminal (the JSON holds the same, and more)."""
from __future__ import annotations


def render(d):
    route = d["route"] + ("+" + d["variant"] if d.get("variant") else "")
    head = "diagnosis: {} by {} ({}): {}".format(d["model"], route, d["precision"], d["verdict"])
    lines = [head]
    if d.get("input"):
        lines.append("  input: {}".format(d["input"]))
    if d["verdict"] == "conversion failed":
        m = d["module"]
        lines.append("  smallest failing module: {} ({})".format(m["path"], m["type"]))
        op = d.get("failed_op")
        if op:
            lines.append("  failing op: {} {!r}".format(op["type"], op["name"]))
        lines.append("  converter ({} stage): {}".format(d.get("stage"), d.get("error")))
        if d.get("reproduces") is False:
            lines.append("  note: alone it fails differently from the whole model, whose error "
                         "was: {}".format(d.get("whole_model_error")))
        tried = [a for a in d.get("attempts", [])]
        if tried:
            lines.append("  tried alone: " + ", ".join(
                "{} {}".format(a["module"], "ok" if a["status"] == "ok" else a["status"].upper())
                for a in tried))
    elif "counts" in d and "layer" not in d:      # et / coreai: searched in the route's env
        lines += _in_env(d)
    else:
        layer = d.get("layer")
        if layer:
            lines += _layer(layer, d["precision"])
        stopped = d.get("evaluator_stopped")
        if stopped:
            lines.append("  {} {} {!r}: {}".format(
                "then" if layer else "evaluator stopped at", stopped.get("type"),
                stopped.get("name"), stopped["error"]))
            if not layer:
                lines += _inputs(stopped.get("inputs", []))
        for name, o in sorted(d.get("outputs", {}).items()):
            lines.append("  output {:<14} {}".format(name, _error(o)))
        odd = d.get("departs_yet_outputs_match")
        if odd:
            lines.append("  note: every output matches, yet {} {!r} -> {} departs from PyTorch's "
                         "value of that name (shape Core ML {}, PyTorch {}): a reused name, "
                         "not a fault".format(odd["type"], odd["name"], odd["output"],
                                              odd["shape_coreml"], odd["shape_pytorch"]))
        if d.get("reference"):
            lines += _share(d.get("counts") or {}, d["reference"])
    lines.append("  written {}".format(d["file"]))
    return "\n".join(lines)


def _in_env(d):
    """et: the first divergent partition, then the op in it; coreai: the first op."""
    lines = []
    part, op = d.get("partition"), d.get("op")
    if part:
        worst = min((o for o in part["outputs"] if not o["within_tolerance"]),
                    key=lambda o: o["snr_db"] if o["snr_db"] is not None else float("inf"),
                    default=None)
        lines.append("  first divergent partition: {} ({}, typed {}, held to {} tolerance){}".format(
            part["index"], part["file"], part["precision"], part["tolerance"],
            "" if worst is None else ": output {} {}".format(worst["node"], _op_error(worst))))
    if op:
        lines.append("  first divergent op{}: {} {!r}{} shape {}  {}".format(
            " in it" if part else "", op.get("target"), op["node"],
            " (Core AI op {})".format(op["coreai_op"]) if op.get("coreai_op") is not None else "",
            op.get("shape"), _op_error(op)))
    elif part:
        lines.append("  no op inside it departs alone (its outputs do): see diagnosis.json")
    if d.get("run_error"):
        lines.append("  the route's runtime stopped: {}".format(d["run_error"]))
    if d.get("search_error"):
        lines.append("  the search stopped: {}".format(d["search_error"]))
    for name, o in sorted(d.get("outputs", {}).items()):
        lines.append("  output {:<14} {}".format(name, _error(o)))
    odd = d.get("departs_yet_outputs_match")
    if odd:
        where = odd.get("op") or {}
        lines.append("  note: every output matches, yet {} {!r} departs from PyTorch's value "
                     "(within the outputs' tolerance downstream)".format(
                         where.get("target"), where.get("node")))
    c = d.get("counts") or {}
    if d["route"] == "et":
        lines.append("  compared {} ops in {} Core ML partition(s) ({} within tolerance) with {}: "
                     "{} agree{}".format(c.get("compared"), c.get("partitions"),
                                        c.get("partitions_within_tolerance"), d["reference"],
                                        c.get("agree"), "; {} not compared (another layout)".format(
                                            c["not_compared"]) if c.get("not_compared") else ""))
    else:
        lines.append("  compared {} ops with {}: {} agree; not compared: {} fused by Core AI's "
                     "optimizer, {} with no Core AI value".format(
                         c.get("compared"), d["reference"], c.get("agree"), c.get("fused"),
                         c.get("unmapped")))
    return lines


def _op_error(o):
    if o.get("max_abs_error") is None:
        return "exact"
    return "max abs error {:.3g}  SNR {} dB".format(
        o["max_abs_error"], "inf" if o.get("snr_db") is None else "{:.1f}".format(o["snr_db"]))


def _share(c, reference):
    """How much of the traced model was held against PyTorch, and why the rest was not."""
    traced, compared = c.get("traced") or 0, c.get("compared", 0)
    constants, kept = c.get("constants", 0), c.get("constants_compared", 0)
    agree = "{} agree".format(c.get("agree"))
    through = [_count(c.get("permuted"), "with permuted axes"), _count(c.get("reshaped"), "reshaped")]
    through = [t for t in through if t]
    if through:
        agree += " ({})".format(", ".join(through))
    if c.get("depart"):
        agree += ", {} depart".format(c["depart"])
    lines = ["  compared {} of {} traced values ({:.0f} %) with {}:".format(
                 compared, traced, 100.0 * compared / traced if traced else 0.0, reference),
             "    {} of {} computed values, {} of {} constants; {}".format(
                 compared - kept, traced - constants, kept, constants, agree)]
    rest = [_count(c.get("constants_without_twin"),
                   "converter-made constants (op settings, folded weights)"),
            _count(c.get("values_without_twin"), "values with no PyTorch twin"),
            _count(c.get("layout_differs"), "values whose layout differs")]
    rest = [r for r in rest if r]
    if rest:
        lines.append("  not compared: " + ", ".join(rest))
    return lines


def _count(n, what):
    """'3 values ...' / '1 value ...'; None for none."""
    if not n:
        return None
    return "{} {}".format(n, what.replace("values", "value", 1) if n == 1 else what)


def _layer(layer, precision):
    if precision == "fp16":
        lines = ["  first {}: {} {!r} -> {} (fp32 max |x| {}, fp16 SNR {} dB, threshold {} dB)".format(
            layer["problem"], layer["type"], layer["name"], layer["output"],
            layer.get("fp32_max_abs"), layer.get("snr_db"), layer.get("threshold_db"))]
    else:
        lines = ["  first divergent layer: {} {!r} -> {}".format(layer["type"], layer["name"],
                                                               layer["output"]),
                 "    shape Core ML {}  PyTorch {}{}".format(
                     layer["shape_coreml"], layer["shape_pytorch"],
                     "" if layer.get("max_abs_error") is None else
                     "  max abs error {:.3g}  SNR {} dB".format(layer["max_abs_error"],
                                                                 layer.get("snr_db")))]
        if layer.get("note"):
            lines.append("    " + layer["note"])
    if layer.get("params"):
        lines.append("    params: " + layer["params"])
    return lines + _inputs(layer.get("inputs", []))


def _inputs(inputs):
    lines = []
    for i in inputs:
        producer = i["producer"]
        if isinstance(producer, dict):
            producer = "{} {!r}".format(producer["type"], producer["name"])
        extra = ""
        if i.get("checked"):
            extra = ", matches"
        if i.get("fp32_max_abs") is not None:
            extra += ", fp32 max |x| {}".format(i["fp32_max_abs"])
        lines.append("    input {} {} from {}{}".format(i["name"], i.get("shape"), producer, extra))
    return lines


def _error(o):
    if o.get("missing"):
        return "missing"
    if o.get("max_abs_error") is None:
        return "shape {} vs PyTorch {}".format(o["shape_coreml"], o["shape_pytorch"])
    return "max abs error {:.3g}  SNR {} dB  {}".format(
        o["max_abs_error"], o.get("snr_db"), "ok" if o.get("agree") else "BEYOND TOLERANCE")
