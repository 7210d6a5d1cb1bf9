"""Which route to ship: the rules, written once. ``recommend`` applies them to the rows
``compare.run`` measured; the README quotes ``RULES``.
"""
from __future__ import annotations

# Core ML specification version -> the oldest OS that runs it (coremltools' spec table).
SPEC_TARGETS = {1: "iOS11", 2: "iOS11.2", 3: "iOS12", 4: "iOS13", 5: "iOS14", 6: "iOS15",
                7: "iOS16", 8: "iOS17", 9: "iOS18"}
TARGETS = ("iOS13", "iOS14", "iOS15", "iOS16", "iOS17", "iOS18", "iOS27")

# Runtimes, most deployable first (rule 4).
RUNTIMES = ("Core ML", "ExecuTorch + Core ML", "Core AI")

RULES = [
    "it converts, and its check against PyTorch matches (`verified: matches`: fp32 "
    "tolerance, or fp16's for an fp16-typed program, which runs as typed everywhere; Core ML "
    "models by the reference evaluator, an ExecuTorch program with its Core ML partitions by "
    "the evaluator and the rest by torch, a Core AI model by Apple's own Core AI interpreter)",
    "its deployment target is no newer than --min-target (when given; Core AI needs iOS / "
    "macOS 27)",
    "fp16, the arithmetic of the GPU and Neural Engine (emulated), stays within tolerance; "
    "when no route passes, the best fp32 route is recommended for CPU only",
    "then the runtime: Core ML alone (part of the OS: nothing added to the app, the widest "
    "reach), then ExecuTorch + Core ML (adds ExecuTorch's runtime to the app; ops left outside "
    "Core ML run on its CPU kernels), then Core AI (iOS / macOS 27 only, and its device "
    "placement is decided on the device, which Linux cannot check)",
    "then the newer toolchain (coremltools 9, then 4, then 3): maintained, and the only one "
    "that writes ML Programs",
    "then the smaller model file, then fewer layers/ops",
]


def target_of(row):
    """The oldest OS that runs the row's artifact: the runtime's own floor, else its spec's."""
    return row.get("min_os") or SPEC_TARGETS.get(row.get("spec_version"))


def _target_rank(name):
    return float(name[3:]) if name else float("inf")


def recommend(rows, min_target=None):
    """(route or None, [reasons]) and, per other route, why not: rows keyed by route name."""
    why_not = {}
    candidates = []
    for route, row in rows.items():
        reason = _disqualified(row, min_target)
        if reason:
            why_not[route] = reason
        else:
            candidates.append(route)
    held = reference_of(rows)
    if not candidates:
        return None, ["no route converts and matches " + held + (
            " within --min-target {}".format(min_target) if min_target else "")], why_not
    fp16_ok = [r for r in candidates if _fp16_ok(rows[r])]
    pool = fp16_ok or candidates
    best = sorted(pool, key=lambda r: _rank(r, rows[r]))[0]
    row = rows[best]
    reasons = ["converts and matches {} (worst SNR {} dB, max abs error {}): {}".format(
        held, _num(row["fp32"].get("snr_db")), _num(row["fp32"].get("max_abs_error")),
        (row.get("verified") or {}).get("reason"))]
    if min_target:
        reasons.append("deployment target {} is within --min-target {}".format(target_of(row), min_target))
    if fp16_ok:
        reasons.append("fp16 (emulated GPU / Neural Engine) within tolerance (worst SNR {} dB)".format(
            _num(row["fp16"].get("snr_db"))))
    elif "not_measured" in (row.get("fp16") or {}):
        reasons.append("fp16 not evaluated: {}; no route that converts stays within the fp16 "
                       "tolerance".format(row["fp16"]["not_measured"]))
    else:
        reasons.append(fp32_deployment(row))
    reasons.append("{} {}, {}, {}".format(row.get("model_type"), _toolchain(row), _size(row),
                                          _count(row)))
    note = runtime_note(row)
    if note:
        reasons.append(note)
    for route in candidates:
        if route == best:
            continue
        if route not in fp16_ok and fp16_ok:
            fp16 = rows[route].get("fp16") or {}
            why_not[route] = ("fp16 not evaluated ({}); ranked after the routes whose fp16 "
                              "was checked".format(fp16["not_measured"]) if "not_measured" in fp16
                              else "fp16 fails: {}".format(fp16_problem(rows[route])))
        else:
            why_not[route] = _ranked_lower(rows[route], row, best)
    note = variants_note(rows, held)
    if note:
        reasons.append(note)
    return best, reasons, why_not


def fp32_deployment(row):
    """What to ship when fp16 fails everywhere, in words that follow the row's compute units:
    an fp32 ML Program never runs on the Neural Engine (CPU and GPU compute it in fp32), so
    it ships as it is; a model the GPU / Neural Engine would run in fp16 ships for CPU only."""
    units = row.get("compute_units") or []
    if units and "NE" not in units:
        return ("fp16 (emulated) fails on every route that converts; this fp32 program runs in "
                "fp32 on {} (Core ML never places it on the Neural Engine): ship it as it is "
                "(computeUnits = .cpuAndGPU)".format(" and ".join(units)))
    return ("fp16 fails on every route that converts: ship it for CPU only "
            "(computeUnits = .cpuOnly), fp32")


SHIPPABLE_SNR_DB = 20.0   # the fp16 tolerance's SNR floor: the bar a compressed variant is shown against


def reference_of(rows):
    """What the routes' outputs were held against: "PyTorch", or "onnxruntime" for an ONNX
    file, which has no PyTorch model (the records' ``golden_source``)."""
    sources = {(row.get("golden_source") or "") for row in rows.values()}
    return "onnxruntime" if any(s.startswith("onnxruntime") for s in sources) else "PyTorch"


def variants_note(rows, held="PyTorch"):
    """One line on the compressed variants (``verified: compressed``): they are shown for
    information only, never recommended (no tolerance applies to compressed weights); the
    smallest whose worst SNR against PyTorch is at least ``SHIPPABLE_SNR_DB`` is named as
    the one to try if the file must be smaller. None without compressed rows."""
    compressed = [r for r, row in rows.items()
                  if row.get("status") == "ok" and (row.get("verified") or {}).get("status") == "compressed"]
    if not compressed:
        return None
    good = [r for r in compressed
            if isinstance(rows[r]["fp32"].get("snr_db"), (int, float))
            and rows[r]["fp32"]["snr_db"] >= SHIPPABLE_SNR_DB]
    text = ("compressed variants ({}) are shown for information only: no tolerance applies to "
            "compressed weights, so none is recommended".format(", ".join(compressed)))
    if not good:
        return text + "; none keeps a worst SNR of {:.0f} dB against {}".format(SHIPPABLE_SNR_DB, held)
    pick = min(good, key=lambda r: (rows[r].get("size_bytes") or 0, -rows[r]["fp32"]["snr_db"], r))
    return text + ("; if the file must be smaller, try {} first: the smallest that keeps a worst "
                   "SNR of {:.0f} dB or more ({}, {} dB), then check it on your own data".format(
                       pick, SHIPPABLE_SNR_DB, _size(rows[pick]), _num(rows[pick]["fp32"]["snr_db"])))


def _disqualified(row, min_target):
    if row["status"] == "not applicable":
        return "not applicable: {}".format(row.get("reason"))
    if row["status"] != "ok":
        return "failed at stage {}: {}".format(row.get("stage"), row.get("reason"))
    verified = row.get("verified") or {}
    if verified.get("status") != "matches":
        return "{}: {}".format(verified.get("status"), verified.get("reason"))
    if min_target and _target_rank(target_of(row)) > _target_rank(min_target):
        needs = "spec {}".format(row.get("spec_version")) if row.get("spec_version") else row.get("runtime")
        return "needs {} ({}), newer than --min-target {}".format(target_of(row), needs, min_target)
    return None


def _fp16_ok(row):
    return bool((row.get("fp16") or {}).get("within_tolerance"))


def fp16_problem(row):
    fp16 = row.get("fp16") or {}
    if "not_measured" in fp16:
        return fp16["not_measured"]
    first = fp16.get("first_nonfinite")
    if first:
        return "inf/NaN first at {} ({})".format(first["layer"], first["type"])
    return "worst SNR {} dB, output {}".format(_num(fp16.get("snr_db")), fp16.get("failing"))


def runtime_note(row):
    """What the runtime asks of the app, in words (None for Core ML alone)."""
    runtime = row.get("runtime") or "Core ML"
    if runtime == "ExecuTorch + Core ML":
        et = row.get("executorch") or {}
        outside = sum((et.get("not_delegated") or {}).values())
        return ("ExecuTorch adds its runtime to the app; {} of {} ops run inside Core ML{}".format(
            et.get("delegated_ops"), et.get("total_ops"),
            ", the other {} on ExecuTorch's CPU kernels".format(outside) if outside else ""))
    if runtime == "Core AI":
        return ("Core AI runs on iOS / macOS 27 and later only; CPU, GPU or Neural Engine is "
                "chosen when the asset is specialized on the device")
    return None


def _runtime_rank(row):
    runtime = row.get("runtime") or "Core ML"
    return RUNTIMES.index(runtime) if runtime in RUNTIMES else len(RUNTIMES)


def _rank(route, row):
    return (_runtime_rank(row), -_ct_major(row), row.get("size_bytes") or 0,
            row.get("layers_ops") or 0, route)


def _ranked_lower(row, best_row, best):
    if _runtime_rank(row) > _runtime_rank(best_row):
        return "{} runtime, ranked after {} for {} ({})".format(
            row.get("runtime"), best_row.get("runtime") or "Core ML", best,
            runtime_note(row) or "rule 4")
    if _ct_major(row) < _ct_major(best_row):
        return "older toolchain ({} vs {} for {})".format(_toolchain(row), _toolchain(best_row), best)
    if (row.get("size_bytes") or 0) > (best_row.get("size_bytes") or 0):
        mine, theirs = _size(row), _size(best_row)
        if mine == theirs:   # a difference the rounding hides: say it in bytes
            mine, theirs = ("{:,} B".format(r.get("size_bytes")) for r in (row, best_row))
        return "larger ({} vs {} for {})".format(mine, theirs, best)
    return "more layers/ops ({} vs {} for {})".format(_count(row), _count(best_row), best)


def _ct_major(row):
    version = (row.get("toolchain") or {}).get("coremltools") or "0"
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def _toolchain(row):
    versions = row.get("toolchain") or {}
    if versions.get("coreai-torch"):
        return "coreai-torch {}".format(versions["coreai-torch"])
    if versions.get("executorch"):
        return "executorch {} + coremltools {}".format(versions["executorch"], versions.get("coremltools"))
    return "coremltools {}".format(versions.get("coremltools"))


def _size(row):
    from bench.units import human_bytes
    return human_bytes(row.get("size_bytes") or 0)


def _count(row):
    layers = str(row.get("model_type")).startswith("neuralNetwork")
    return "{} {}".format(row.get("layers_ops"), "layers" if layers else "ops")


def _num(x):
    if isinstance(x, float):
        return "{:.3g}".format(x) if abs(x) < 1 else "{:.1f}".format(x)
    return str(x)
