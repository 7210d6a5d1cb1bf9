"""Find the first Core ML layer / op whose value departs from PyTorch (fp32) or from the
fp32 evaluation (fp16). How names are matched: see ``diagnose``."""
from __future__ import annotations

import re

import numpy as np

from coreml_reference import metrics


# ---------------------------------------------------------------- the model's layer graph

class Layer(object):
    def __init__(self, type_name, name, inputs, outputs, params=""):
        self.type, self.name = type_name, name
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.params = params

    def brief(self):
        return {"type": self.type, "name": self.name}


def layers_of(spec):
    """Top-level layers (NeuralNetwork) or ops (ML Program main function), in order."""
    kind = spec.WhichOneof("Type")
    if kind == "mlProgram":
        function = spec.mlProgram.functions["main"]
        from coreml_reference.mlprogram.program import function_block
        block = function_block(function, "model")
        consts = {}
        found = []
        for op in block.operations:
            if op.type == "const":
                consts[op.outputs[0].name] = _const_value(op)
                continue
            inputs = [a.name for arg in op.inputs.values() for a in arg.arguments if a.name]
            params = ", ".join("{}={}".format(k, consts[a.name]) for k, arg in op.inputs.items()
                               for a in arg.arguments if a.name in consts and consts[a.name])
            found.append(Layer(op.type, op.outputs[0].name if op.outputs else "", 
                               [i for i in inputs if i not in consts],
                               [o.name for o in op.outputs], params))
        return found
    network = getattr(spec, kind)
    return [Layer(l.WhichOneof("layer"), l.name, l.input, l.output,
                  _params(getattr(l, l.WhichOneof("layer")))) for l in network.layers]


def _params(message, depth=0):
    """A short text of a layer's settings, leaving out weights."""
    parts = []
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.name == "WeightParams":
            continue
        repeated = _repeated(field)
        if repeated and field.message_type is None:
            text = "[{}]".format(",".join(str(v) for v in value))
        elif repeated:
            text = "[{}]".format("; ".join(_params(v, depth + 1) for v in value))
        elif field.message_type is not None:
            if depth > 2:
                continue
            text = "{" + _params(value, depth + 1) + "}"
        else:
            text = _scalar(field, value)
        parts.append("{}: {}".format(field.name, text))
    return ", ".join(parts)[:300]


def _scalar(field, value):
    """An enum by its name (a unary layer's ``LOG``, not 5); a float as the float32 it is
    stored as (``1e-06``, not 9.999999974752427e-07)."""
    if field.enum_type is not None and value in field.enum_type.values_by_number:
        return field.enum_type.values_by_number[value].name
    if isinstance(value, float):
        return "{:.7g}".format(value)
    return str(value)


def _repeated(field):
    try:
        return bool(field.is_repeated)         # newer protobuf
    except AttributeError:
        return field.label == field.LABEL_REPEATED


def _const_value(op):
    """Small constants (axes, pads, strides) as text; nothing for weight tensors."""
    try:
        tensor = op.attributes["val"].immediateValue.tensor
        for field in ("ints", "floats", "bools", "strings"):
            values = list(getattr(tensor, field).values)
            if values and len(values) <= 8:
                return "[{}]".format(",".join(str(v) for v in values))
    except Exception:  # a blob-file weight or another encoding: not a setting worth showing
        pass
    return ""


# ---------------------------------------------------------------- PyTorch's values by name

def sanitize(name):
    """ML Program names as coremltools writes them: ``input.3`` -> ``input_3``, ``15`` -> ``var_15``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return "var_" + name if name[:1].isdigit() else name


class Reference(object):
    """PyTorch's intermediates by converter name (see backends.intermediates)."""

    def __init__(self, values, source):
        self.values = values
        self.source = source
        self._sanitized = dict((sanitize(k), k) for k in values)

    def get(self, name):
        if name in self.values:
            return self.values[name]
        key = self._sanitized.get(name)
        return None if key is None else self.values[key]


def load_reference(info, golden_inputs, golden_outputs=None):
    """``info`` is the worker's record of what it saved (conversion.json "intermediates").
    PyTorch's outputs (``golden_outputs``, by output name) join the reference under the
    names the converted model gives them."""
    reference = _intermediates(info, golden_inputs)
    for name, value in (golden_outputs or {}).items():
        if reference.get(name) is None:
            reference.values[name] = value
            reference._sanitized[sanitize(name)] = name
    return reference


def _intermediates(info, golden_inputs):
    if not info or "file" not in info:
        raise RuntimeError("the worker saved no PyTorch intermediates: {}".format(
            (info or {}).get("error", "no record")))
    if info["kind"] == "onnx":
        import onnxruntime
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3      # not its notes on unused initializers
        session = onnxruntime.InferenceSession(info["file"], options,
                                               providers=["CPUExecutionProvider"])
        feeds = dict((i.name, golden_inputs[i.name]) for i in session.get_inputs())
        names = [o.name for o in session.get_outputs()]
        values = dict(zip(names, session.run(names, feeds)))
        return Reference(values, "ONNX values (onnxruntime on model.onnx)")
    with np.load(info["file"], allow_pickle=False) as data:
        values = dict((k, data[k]) for k in data.files)
    what = "FX nodes of torch.export" if info["kind"] == "fx" else "TorchScript values"
    return Reference(values, "PyTorch {} (same names as the converter's)".format(what))


# ---------------------------------------------------------------- tracing the evaluator

class Traced(object):
    """Everything the evaluator computed, in order; and where it stopped, if it did."""

    def __init__(self):
        self.order, self.values, self.types, self.layer_of = [], {}, {}, {}
        self.outputs, self.error = None, None

    def __call__(self, name, type_name, value, layer_name=None, *rest):
        if name not in self.values:
            self.order.append(name)
        self.values[name] = np.array(value, copy=True)
        self.types[name] = type_name
        self.layer_of[name] = layer_name


def run_traced(model_path, inputs, precision):
    """The evaluator's outputs and every intermediate value, as a ``Traced`` (``error`` set
    where the evaluator stopped)."""
    import coreml_reference
    traced = Traced()
    try:
        traced.outputs = coreml_reference.predict(model_path, inputs, precision=precision,
                                                  trace=traced)
    except coreml_reference.EvaluatorError as e:
        traced.error = e
    return traced


MAX_PERMUTATIONS = 120   # candidate axis orders tried before a layout counts as unknown


def compare(actual, expected, layouts=True):
    """{"agree", "shape_coreml", "shape_pytorch", "max_abs_error", "snr_db"[, "layout"]}.

    Shapes that differ only by size-1 axes are compared as one (NeuralNetwork keeps extra
    unit axes). With ``layouts``, a value the converter laid out differently is compared
    under that layout: its axes permuted (every axis order that fits the shapes is tried,
    also for equal shapes such as a square; it agrees if one does), or the same numbers
    reshaped; "layout" says which. A layout that cannot be told gives "agree": None,
    "layout": "differs" (not compared). Values of different sizes never agree."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    result = {"shape_coreml": list(actual.shape), "shape_pytorch": list(expected.shape)}
    same = _squeezed(actual.shape) == _squeezed(expected.shape)
    if same:
        found = _measure(actual.reshape(expected.shape), expected)
    elif layouts and actual.size == expected.size:
        found = {"agree": None, "layout": "differs"}
    else:
        found = {"agree": False}
    if layouts and not found["agree"] and actual.size == expected.size:
        other = _other_layout(actual, expected)
        if other is not None and (other["agree"] or not same):
            found = other
    result.update(found)
    return result


def _other_layout(actual, expected):
    """The measure of ``actual`` under the first axis order (or reshape) that agrees with
    ``expected``; else the closest axis order tried; None when none fits."""
    source = actual.reshape(_squeezed(actual.shape))
    target = expected.reshape(_squeezed(expected.shape))
    orders = _axis_orders(list(source.shape), list(target.shape), MAX_PERMUTATIONS) or []
    best = None
    for order in orders:
        if list(order) == list(range(source.ndim)):
            continue   # that is the plain comparison
        measured = _measure(np.transpose(source, order), target)
        measured.update(layout="permuted", axes=list(order))
        if measured["agree"]:
            return measured
        if best is None or (measured["snr_db"] or -np.inf) > (best["snr_db"] or -np.inf):
            best = measured
    if source.shape != target.shape:
        reshaped = _measure(actual.reshape(expected.shape), expected)
        if reshaped["agree"]:
            return dict(reshaped, layout="reshaped")
    return best


def _measure(actual, expected):
    return {"agree": bool(metrics.within_tolerance(actual, expected, "fp32")),
            "max_abs_error": _num(metrics.max_abs_error(actual, expected)),
            "snr_db": _num(metrics.snr_db(actual, expected))}


def _axis_orders(source, target, limit):
    """Every order of ``source``'s axes giving ``target``'s shape (at most ``limit``; None
    when there are more)."""
    found = []

    def extend(order):
        if len(found) > limit:
            return
        if len(order) == len(target):
            found.append(tuple(order))
            return
        for axis, size in enumerate(source):
            if axis not in order and size == target[len(order)]:
                extend(order + [axis])
    if sorted(source) == sorted(target):
        extend([])
    return found if len(found) <= limit else None


def _squeezed(shape):
    return [d for d in shape if d != 1]


def _num(x):
    return None if x is None or np.isnan(x) else float("{:.5g}".format(x))


# ---------------------------------------------------------------- the searches

def first_divergence(spec, traced, reference):
    """The first traced value that departs from PyTorch (a report dict, or None), and a
    count of what was compared and why the rest was not ("counts")."""
    producers = dict((o, l) for l in layers_of(spec) for o in l.outputs)
    agreed = set()
    counts = dict(traced=len(traced.order), compared=0, agree=0, permuted=0, reshaped=0,
                  depart=0, constants=0, constants_compared=0, constants_without_twin=0,
                  values_without_twin=0, layout_differs=0)
    layout_differs, found = [], None
    for name in traced.order:
        expected = reference.get(name)
        constant = traced.types.get(name) in CONSTANT_TYPES
        counts["constants"] += constant
        if expected is None:
            counts["constants_without_twin" if constant else "values_without_twin"] += 1
            continue
        result = compare(traced.values[name], expected)
        if result["agree"] is None:
            counts["layout_differs"] += 1
            layout_differs.append({"name": name, "shape_coreml": result["shape_coreml"],
                                   "shape_pytorch": result["shape_pytorch"]})
            continue
        counts["compared"] += 1
        counts["constants_compared"] += constant
        if result["agree"]:
            agreed.add(name)
            counts["agree"] += 1
            if result.get("layout") in ("permuted", "reshaped"):
                counts[result["layout"]] += 1
            continue
        counts["depart"] += 1
        if found is None:
            layer = producers.get(name)
            found = describe(layer, name, traced, producers, agreed)
            found.update(result)
            found["note"] = shape_note(layer, traced, result, reference)
    counts["layout_differs_values"] = layout_differs[:20]
    return found, counts


CONSTANT_TYPES = ("const", "loadConstant", "loadConstantND")


def first_fp16_problem(spec, fp16, fp32, min_snr_db=metrics.FP16_MIN_SNR_DB):
    """The first value whose fp16 evaluation overflows or loses more than ``min_snr_db``."""
    producers = dict((o, l) for l in layers_of(spec) for o in l.outputs)
    fine = set()
    for name in fp16.order:
        if fp16.types.get(name) in CONSTANT_TYPES:
            continue    # weights rounded to fp16: expected, and not where an overflow starts
        value, base = fp16.values[name], fp32.values.get(name)
        if base is None or value.shape != base.shape or not np.issubdtype(base.dtype, np.floating):
            continue
        base_finite = np.isfinite(base)
        overflow = bool(np.any(~np.isfinite(value) & base_finite))
        snr = metrics.snr_db(np.where(base_finite, value, 0), np.where(base_finite, base, 0))
        if not overflow and snr >= min_snr_db:
            fine.add(name)
            continue
        found = describe(producers.get(name), name, fp16, producers, fine)
        found.update(problem="overflow" if overflow else "precision loss", snr_db=_num(snr),
                     fp32_max_abs=_num(float(np.max(np.abs(base))) if base.size else 0.0),
                     fp16_nonfinite=int(np.sum(~np.isfinite(value))),
                     threshold_db=min_snr_db)
        for item in found["inputs"]:
            source = fp32.values.get(item["name"])
            if source is not None and source.size:
                item["fp32_max_abs"] = _num(float(np.max(np.abs(source))))
        return found
    return None


def describe(layer, name, traced, producers, good):
    """The layer that produced ``name``, and where each of its inputs came from."""
    found = {"output": name, "type": traced.types.get(name), "name": traced.layer_of.get(name)}
    if layer is not None:
        found.update(type=layer.type, name=layer.name, params=layer.params)
        found["inputs"] = [_input(i, traced, producers, good) for i in layer.inputs]
    else:
        found["inputs"] = []
    return found


def _input(name, traced, producers, good):
    source = producers.get(name)
    value = traced.values.get(name)
    return {"name": name, "producer": source.brief() if source else "model input",
            "shape": list(value.shape) if value is not None else None,
            "checked": name in good or None}


def shape_note(layer, traced, result, reference):
    """For a shape change that differs: which axes grow or shrink, Core ML vs PyTorch."""
    if result.get("layout") == "permuted":
        return "Core ML holds this value with its axes in another order; compared in " \
               "PyTorch's order (Core ML axes {}), the values differ".format(result["axes"])
    if layer is None or not layer.inputs or result["shape_coreml"] == result["shape_pytorch"]:
        return None
    source = traced.values.get(layer.inputs[0])
    if source is None or source.ndim != len(result["shape_coreml"]) or \
            source.ndim != len(result["shape_pytorch"]):
        return None
    def change(shape):
        parts = ["axis {} {:+d}".format(i, b - a) for i, (a, b) in
                 enumerate(zip(source.shape, shape)) if a != b]
        return ", ".join(parts) or "no axis"
    return "{} {!r} changes {} (Core ML), PyTorch changes {}".format(
        layer.type, layer.name, change(result["shape_coreml"]), change(result["shape_pytorch"]))


def stopped_at(spec, traced):
    """Where the evaluator stopped: the failing layer and its inputs' producers."""
    error = traced.error
    if error is None:
        return None
    layers = layers_of(spec)
    producers = dict((o, l) for l in layers for o in l.outputs)
    name = getattr(error, "layer_name", None)
    layer = next((l for l in layers if name is not None and l.name == name), None)
    if layer is None:   # no name on the error: the first layer whose outputs never came
        layer = next((l for l in layers if not any(o in traced.values for o in l.outputs)), None)
    found = {"error": "{}: {}".format(type(error).__name__, error)}
    if layer is not None:
        found.update(type=layer.type, name=layer.name, params=layer.params,
                     inputs=[_input(i, traced, producers, set()) for i in layer.inputs])
    return found


def output_errors(outputs, golden, precision="fp32"):
    """Each model output (or blob of that name, when the evaluator stopped) against
    PyTorch's golden output (``golden``: {name: array})."""
    found = {}
    for name, expected in golden.items():
        if outputs is None or name not in outputs:
            found[name] = {"missing": True}
            continue
        result = compare(outputs[name], expected, layouts=False)   # the user's layout
        if result.get("snr_db") is not None:
            result["agree"] = bool(result["agree"] or precision == "fp16" and
                                   result["snr_db"] >= metrics.FP16_MIN_SNR_DB)
        found[name] = result
    return found
