"""Accuracy of one model's outputs against PyTorch's golden outputs.

The figures (max abs error, SNR in dB, top-5 label agreement for ``clip_output``) come from
``coreml_reference.metrics``, where the tolerances are stated with their reasons."""
from __future__ import annotations

import numpy as np

from coreml_reference import metrics

TOP_K = 5
LABEL_OUTPUT = "clip_output"   # the tagger's clip-level scores: labels are what users see


def compare(actual, golden):
    """{name: array} vs golden {name: array} -> {name: figures} for every golden output."""
    figures = {}
    for name, expected in golden.items():
        if name not in actual:
            figures[name] = {"not_measured": "output {!r} missing from the model's outputs".format(name)}
            continue
        value = np.asarray(actual[name], dtype=np.float64)
        if value.shape != expected.shape and value.size == expected.size:
            value = value.reshape(expected.shape)   # Core ML may add or drop unit axes
        try:
            row = {"max_abs_error": json_number(metrics.max_abs_error(value, expected)),
                   "snr_db": json_number(metrics.snr_db(value, expected)),
                   "nonfinite": int(np.size(value) - np.count_nonzero(np.isfinite(value)))}
        except ValueError as e:          # shapes that cannot be compared
            figures[name] = {"not_measured": str(e)}
            continue
        if name == LABEL_OUTPUT:
            row["top5_agreement"] = top_k_agreement(value, expected, TOP_K)
        figures[name] = row
    return figures


def top_k_agreement(actual, expected, k=TOP_K):
    """|top-k(actual) ∩ top-k(expected)| / k: the share of PyTorch's top labels kept."""
    return len(set(metrics.top_k(actual, k)) & set(metrics.top_k(expected, k))) / float(k)


def json_number(x):
    # JSON has no inf/NaN: keep them as strings the report prints as they are.
    return x if np.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else "nan")


class FirstNonFinite:
    """A ``trace`` callback for coreml_reference: remembers the first intermediate result
    holding inf or NaN — where fp16 overflow starts. Constants are skipped: a bound such as
    clip's float32 maximum turns to inf in fp16 by design, and computes nothing."""

    CONSTANTS = ("const", "loadConstant", "loadConstantND")

    def __init__(self):
        self.found = None

    def __call__(self, name, type_name, value, layer_name=None):
        if self.found is not None or type_name in self.CONSTANTS \
                or type_name.startswith("constexpr_"):   # compressed weights are constants too
            return
        array = np.asarray(value)
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            self.found = {"layer": layer_name or name, "output": name, "type": type_name,
                          "inf": int(np.count_nonzero(np.isinf(array))),
                          "nan": int(np.count_nonzero(np.isnan(array)))}


def reference_accuracy(model_path, inputs, golden, precision, runner=None):
    """Evaluate with coreml_reference -> {"outputs": figures, "first_nonfinite": ...}, or a
    not-measured cell naming why the evaluator could not run the model.

    ``runner``: for an artifact the host's evaluator cannot open (an ExecuTorch program, a
    Core AI asset), ``runner(path, inputs, precision)`` runs it by its route's own Linux
    runtime (``bench.run.RouteRunner``; its ``label`` names it in the result as ``runner``).
    It traces no intermediate values, so ``first_nonfinite`` is None then; a runtime with no
    fp16 emulation (``NotEmulated``) makes the cell say why."""
    from backends.base import NotEmulated
    if runner is not None:
        label = getattr(runner, "label", "the route's runtime")
        try:
            outputs = runner(model_path, inputs, precision)
        except NotEmulated as e:
            return {"not_measured": "{} has no {} emulation ({})".format(label, precision, e)}
        except Exception as e:   # noqa: BLE001 — any runtime failure is a cell with its reason
            return {"not_measured": "{}: {}: {}".format(label, type(e).__name__, e)}
        return {"outputs": compare(outputs, golden), "first_nonfinite": None, "runner": label}
    try:
        import coreml_reference
        watcher = FirstNonFinite()
        outputs = coreml_reference.predict(model_path, inputs, precision=precision, trace=watcher)
    except Exception as e:   # noqa: BLE001 — any evaluator failure is a row with its reason
        return {"not_measured": "reference evaluator: {}: {}".format(type(e).__name__, e)}
    return {"outputs": compare(outputs, golden), "first_nonfinite": watcher.found}


# The zoo's example input is quieter than fp16's worst case, which would hide it.
STRESS_NAME = "full-scale 1 kHz tone"


def full_scale_case(model, record, inputs):
    """(inputs, PyTorch golden) for the stress tone, or a not-measured cell saying why.

    PyTorch runs here on the host: the route's conversion used the zoo's seeded weights
    (checked in its record), which every torch version builds identically."""
    import torch
    import zoo
    if model not in zoo.MODELS:
        return {"not_measured": "stress input applies to the zoo's waveform models only"}
    if (record or {}).get("weights") != "seeded":
        return {"not_measured": "stress input needs the seeded weights (this model used a checkpoint)"}
    entry = zoo.get(model)
    if list(entry.inputs) != ["waveform"]:
        return {"not_measured": "stress input applies to waveform models only"}
    tone = zoo.full_scale_tone(inputs["waveform"].shape, entry.sample_rate)
    with torch.no_grad():
        outputs = entry.build()(torch.from_numpy(tone))
    if not isinstance(outputs, tuple):
        outputs = (outputs,)
    golden = {name: value.numpy() for name, value in zip(entry.outputs, outputs)}
    return {"inputs": {"waveform": tone}, "golden": golden}
