"""Does a converted model compute what PyTorch computed? Two checks a conversion records.

- ``verified``: the reference evaluator (fp32, Core ML on CPU) on golden.npz's inputs
  against its outputs, held to the fp32 tolerance of ``coreml_reference.metrics``.
- ``torch_drift``: the route env's torch against the host's torch on the same weights and
  inputs, so that a route's error is never confused with an older torch computing
  differently.
"""
from __future__ import annotations

import os

import numpy as np

from backends import builds
from backends.variants import PRECISION_VARIANTS
from bench.accuracy import FirstNonFinite, json_number
from coreml_reference import metrics

MATCHES, DIVERGES, CANNOT = "matches", "diverges", "cannot evaluate"
LOSSY = "compressed"   # a compression variant: lossy by design, its figures are the result


def in_host(path, inputs, precision="fp32", trace=None):
    """The default runner: the host's reference evaluator on a Core ML model file."""
    import coreml_reference
    return coreml_reference.predict(path, inputs, precision=precision, trace=trace)


def verify(folder, record, runner=None):
    """{"status", "worst_snr_db", "max_abs_error", "reason", "cases"} for the model in
    ``folder``, over every case of its golden.npz (``builds.read_cases``): it matches only
    if every case matches; the verdict is the worst case's, named when there are several.
    ``runner(path, inputs, precision)`` runs the artifact (default: ``in_host``; an artifact
    only its route's env can run comes with a runner into that env)."""
    cases = builds.read_cases(folder)
    verdicts = [(case.label, verify_any_case(folder, record, case, runner)) for case in cases]
    label, worst = max(verdicts, key=lambda lv: _badness(lv[1]))
    if len(verdicts) > 1:
        worst = dict(worst, reason="{} (worst of {} cases: {})".format(
            worst["reason"], len(verdicts), label))
        worst["worst_case"] = label
        worst["cases"] = [dict(v, case=l) for l, v in verdicts]
    return worst


_ORDER = {None: 0, "matches": 1, "compressed": 2, "cannot evaluate": 3, "diverges": 4}


def _badness(verdict):
    snr = verdict.get("worst_snr_db")
    return (_ORDER.get(verdict["status"], 3), -(snr if isinstance(snr, (int, float)) else 1e9))


def verify_any_case(folder, record, case, runner=None):
    """``verify_case``, or for a stateful model's golden (``builds.steps_of``) the same over
    its successive calls run with one state, naming the first call that departs."""
    steps = builds.steps_of(record)
    if not steps:
        return verify_case(folder, record, case, runner)
    stepper = StepRunner(runner, steps)
    verdict = verify_case(folder, record, case, stepper)
    if stepper.outputs is not None:
        precision = "fp16" if record.get("compute_precision") in ("fp16", "mixed") else "fp32"
        verdict = dict(verdict, steps=steps)
        first = first_departing_step(stepper.outputs, case.outputs, steps, precision)
        verdict["first_departing_step"] = first
        if first is not None:
            verdict["reason"] = "{}; call {} of {} is the first to depart".format(
                verdict["reason"], first + 1, steps)
        else:
            verdict["reason"] = "{} (all {} successive calls, one state)".format(
                verdict["reason"], steps)
    return verdict


class StepRunner(object):
    """A runner for golden inputs that carry a leading axis of ``steps`` calls: one state
    through all the calls (the host's evaluator: ``coreml_reference.new_state``; a route's
    own runtime: ``runner(..., steps=K)``); returns the outputs stacked, and keeps them."""

    def __init__(self, runner, steps):
        self.runner, self.steps, self.outputs = runner, steps, None

    def __call__(self, path, inputs, precision, trace=None):
        if self.runner is not None:
            outputs = self.runner(path, inputs, precision, steps=self.steps)
        else:
            import coreml_reference
            model = coreml_reference.load(path)
            state = coreml_reference.new_state(model)
            outputs = builds.stack_steps([
                coreml_reference.predict(model, call, precision=precision, trace=trace, state=state)
                for call in builds.split_steps(inputs, self.steps)])
        self.outputs = outputs
        return outputs


def first_departing_step(outputs, golden, steps, precision):
    """Index of the first call whose outputs leave the tolerance, or None."""
    for i in range(steps):
        worst = _worst(dict((k, np.asarray(v)[i]) for k, v in outputs.items() if k in golden),
                       dict((k, v[i]) for k, v in golden.items()), precision)
        if worst["failing"] or worst["missing"]:
            return i
    return None


def verify_case(folder, record, case, runner=None):
    """The verdict on one case (inputs and PyTorch's outputs for them)."""
    import coreml_reference
    from backends.base import NotEmulated
    inputs, golden = case.inputs, case.outputs
    path = os.path.join(folder, record["artifact"])
    try:
        outputs = (runner or in_host)(path, inputs, "fp32")
    except coreml_reference.ShapeError as e:
        # The evaluator follows Core ML's shape rules: Core ML rejects this model too.
        return _verdict(DIVERGES, reason="Core ML would reject it: {}".format(e))
    except (coreml_reference.UnsupportedError, NotEmulated) as e:
        return _verdict(CANNOT, reason=str(e))
    except Exception as e:  # noqa: BLE001 — any other evaluator failure is named, not raised
        return _verdict(CANNOT, reason="{}: {}".format(type(e).__name__, e))
    # An fp16-typed ML Program computes in fp16 as typed, on every device: hold it to the
    # fp16 tolerance, as a "mixed" one (Core AI: fp16 with fp32 norms); everything else
    # (fp32 programs, NeuralNetworks on the CPU) to fp32's.
    typed_fp16 = record.get("compute_precision") in ("fp16", "mixed")
    worst = _worst(outputs, golden, "fp16" if typed_fp16 else "fp32")
    if worst["missing"]:
        return _verdict(DIVERGES, worst, "output {!r} is missing".format(worst["missing"]))
    variant = record.get("variant")
    if variant and variant not in PRECISION_VARIANTS:   # a precision is no compression
        return _verdict(LOSSY, worst, "compressed weights ({}): no tolerance applies; the figures "
                        "say how far it is from PyTorch".format(variant))
    if worst["failing"] and worst["nonfinite"]:
        return _verdict(DIVERGES, worst, "output {} holds {} inf/NaN value(s) where PyTorch's are "
                        "finite".format(worst["failing"], worst["nonfinite"]))
    if worst["failing"]:
        return _verdict(DIVERGES, worst, "output {} departs from PyTorch (SNR {} dB, max abs "
                        "error {})".format(worst["failing"], _num(worst["snr_db"]),
                                           _num(worst["max_abs_error"])))
    if typed_fp16:
        return _verdict(MATCHES, worst, "every output within the fp16 tolerance (SNR >= {:.0f} dB; "
                        "a program typed fp16 (or mixed), evaluated as typed)".format(metrics.FP16_MIN_SNR_DB))
    return _verdict(MATCHES, worst, "every output within the fp32 tolerance (SNR >= {:.0f} dB, max "
                    "abs error <= {:g} x scale)".format(metrics.FP32_MIN_SNR_DB, metrics.FP32_MAX_ABS_REL))


def worst_case_at_precision(folder, record, precision, runner=None):
    """Worst figures over the outputs at ``precision`` (fp16 is the evaluator's emulation of
    GPU / Neural Engine arithmetic), with the first layer holding inf/NaN, for the worst of
    golden.npz's cases (named under ``case``): a dict, or one with ``not_measured`` naming
    why the evaluator could not run. ``runner``: as ``verify``'s (no per-layer trace then)."""
    results = []
    for case in builds.read_cases(folder):
        result = evaluate_case(folder, record, case, precision, runner)
        if "not_measured" in result:
            return result
        results.append(dict(result, case=case.label))
    return min(results, key=lambda r: (r["within_tolerance"], _snr(r)))


def _snr(result):
    snr = result.get("snr_db")
    return snr if isinstance(snr, (int, float)) else float("-inf")


def _num(x):
    if isinstance(x, float):
        return "{:.3g}".format(x) if abs(x) < 1 else "{:.1f}".format(x)
    return str(x)


def evaluate_case(folder, record, case, precision, runner=None):
    from backends.base import NotEmulated
    inputs, golden = case.inputs, case.outputs
    watcher = FirstNonFinite()
    path = os.path.join(folder, record["artifact"])
    steps = builds.steps_of(record)
    try:
        if steps:   # a stateful model: every call, with one state, as verify runs it
            outputs = StepRunner(runner, steps)(path, inputs, precision, trace=watcher)
        elif runner is None:
            outputs = in_host(path, inputs, precision, trace=watcher)
        else:
            outputs = runner(path, inputs, precision)
    except NotEmulated as e:
        return {"not_measured": str(e)}
    except Exception as e:  # noqa: BLE001
        return {"not_measured": "reference evaluator: {}: {}".format(type(e).__name__, e)}
    worst = _worst(outputs, golden, precision)
    worst["first_nonfinite"] = watcher.found
    worst["within_tolerance"] = not worst["failing"] and not worst["missing"]
    return worst


def torch_drift(folder, host):
    """Route env's golden outputs against the host torch's outputs (``host``: a dict with
    ``outputs`` in order and ``torch``), or why there is nothing to compare."""
    if host.get("outputs") is None:
        return {"not_measured": host.get("reason") or "no host PyTorch run"}
    _, golden = builds.read_golden(folder)
    if len(golden) != len(host["outputs"]):
        return {"not_measured": "host run returned {} outputs, the route {}".format(
            len(host["outputs"]), len(golden))}
    worst_snr, worst_err = float("inf"), 0.0
    for expected, actual in zip(golden.values(), host["outputs"]):
        if np.shape(expected) != np.shape(actual):
            return {"not_measured": "host output shape {} differs from {}".format(
                np.shape(actual), np.shape(expected))}
        worst_snr = min(worst_snr, metrics.snr_db(actual, expected))
        worst_err = max(worst_err, metrics.max_abs_error(actual, expected))
    return {"host_torch": host["torch"], "max_abs_error": worst_err, "snr_db": json_number(worst_snr)}


def _worst(outputs, golden, precision):
    worst = {"snr_db": float("inf"), "max_abs_error": 0.0, "failing": None, "missing": None,
             "nonfinite": 0}
    for name, expected in golden.items():
        if name not in outputs:
            worst["missing"] = worst["missing"] or name
            continue
        value = np.asarray(outputs[name])
        if value.shape != expected.shape and value.size == expected.size:
            value = value.reshape(expected.shape)   # Core ML may add or drop unit axes
        if value.shape != expected.shape:
            worst["missing"] = worst["missing"] or "{} (shape {} vs PyTorch {})".format(
                name, list(value.shape), list(expected.shape))
            continue
        worst["nonfinite"] += int(value.size - np.count_nonzero(np.isfinite(value.astype(np.float64))))
        worst["snr_db"] = min(worst["snr_db"], metrics.snr_db(value, expected))
        worst["max_abs_error"] = max(worst["max_abs_error"], metrics.max_abs_error(value, expected))
        if not metrics.within_tolerance(value, expected, precision) and worst["failing"] is None:
            worst["failing"] = name
    worst["snr_db"] = json_number(worst["snr_db"])
    worst["max_abs_error"] = json_number(worst["max_abs_error"])
    return worst


def _verdict(status, worst=None, reason=None):
    worst = worst or {}
    return {"status": status, "worst_snr_db": worst.get("snr_db"),
            "max_abs_error": worst.get("max_abs_error"), "reason": reason}
