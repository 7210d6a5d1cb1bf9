"""Walk an ML Program's main function op by op.

Two steps, like Core ML's compile-then-predict:
- ``compile_block`` turns the protobuf block into a plan once: each op's registry function,
  its input bindings (variable names or decoded inline values), its declared output dtypes
  and shapes; const values are decoded from weight.bin here. Plans are cached per model file
  (keyed by path, size and mtime), so repeated predictions skip protobuf and blob decoding.
- ``Runner`` executes a plan. The loop knows no op: it binds inputs, calls the function,
  gives each result its declared dtype (and rounds it to float16 in fp16 mode), checks its
  shape against the program's declaration, and reports every value to ``trace``.

Float16 values are held in their compute form: float32 arrays whose values are exactly the
float16 ones (``kernels.round_to_float16``), with their names in ``Runner.half``. Op functions
compute in float32 anyway, so an fp16-typed program pays one rounding per op result and no
casts back and forth; float16 constants are widened once, when the plan is made. ``trace``
and the outputs see float16 arrays, as declared.
"""
from __future__ import annotations

import collections
import os
import threading

import numpy as np

from coreml_reference.dtypes import ARRAY_DTYPES
from coreml_reference.errors import (EvaluatorError, InputError, InvalidModelError, LayerError,
                                     ModelFileError, RuntimeCheckError, UnsupportedError)
from coreml_reference.inputs import (allowed_shapes, as_declared, check_allowed_shape,
                                     image_pixels)
from coreml_reference.kernels import half_values_to_float16, round_to_float16
from coreml_reference.mlprogram.registry import OPS
from coreml_reference.mlprogram.values import (DTYPE_NAMES, ValueDecoder, numpy_dtype,
                                               tensor_dtype, tensor_shape)


# --- the plan -------------------------------------------------------------------------------

class OpPlan:
    __slots__ = ("type", "name", "fn", "lists", "inputs", "outputs", "out_types", "blocks",
                 "const", "const16", "folded", "half", "exact")

    def __init__(self, op_type, name):
        self.type = op_type
        self.name = name
        self.fn = None
        self.lists = frozenset()
        self.inputs = []        # (key, is_list, [("var", name) | ("val", value32, value16)])
        self.outputs = []       # (name, dtype or None, declared shape or None)
        self.out_types = []     # the ValueType messages, for ops that need more
        self.blocks = []        # nested BlockPlans (control flow)
        self.const = None       # decoded value of a const op
        self.const16 = None     # ... rounded to float16 (fp16 mode), made on first use
        self.folded = {}        # constexpr_* results by precision: constants, computed once
        self.half = False       # a float16 const, held in its float32 compute form
        self.exact = False      # an exact op (registry) whose inline float values are float16


class BlockPlan:
    __slots__ = ("inputs", "ops", "outputs", "drops")

    def __init__(self, inputs, ops, outputs):
        self.inputs = inputs    # (name, dtype or None)
        self.ops = ops
        self.outputs = outputs  # variable names
        self.drops = _drops(ops, set(outputs))   # per op: names no later op of the block reads


def compile_block(block, decoder, model_path):
    ops = [compile_op(op, decoder, model_path) for op in block.operations]
    inputs = [(named.name, tensor_dtype(named.type)) for named in block.inputs]
    return BlockPlan(inputs, ops, list(block.outputs))


def _op_reads(op):
    """Variables an op reads: its inputs, and everything its nested blocks read."""
    names = {source[1] for _, _, sources in op.inputs for source in sources
             if source[0] == "var"}
    for block in op.blocks:
        names.update(block.outputs)
        for nested in block.ops:
            names |= _op_reads(nested)
    return names


def _drops(ops, keep):
    """For each op, the variables to drop once it has run: those it reads last in the block
    (a nested block's reads count as its op's), and its outputs that nothing reads, except
    ``keep``. A run then reuses the memory of values it no longer needs, still in cache,
    instead of holding every intermediate value to the end."""
    last = {}
    for index, op in enumerate(ops):
        for name in op.outputs:
            last.setdefault(name[0], index)
        for name in _op_reads(op):
            last[name] = index
    drops = [[] for _ in ops]
    for name, index in last.items():
        if name not in keep:
            drops[index].append(name)
    return [tuple(drop) for drop in drops]


def compile_op(op, decoder, model_path):
    name = op_name(op)
    plan = OpPlan(op.type, name)
    plan.out_types = [o.type for o in op.outputs]
    plan.outputs = [(o.name, tensor_dtype(o.type), tensor_shape(o.type)) for o in op.outputs]
    if op.type == "const" and not op.inputs and len(op.outputs) == 1:
        if "val" not in op.attributes:
            raise ModelFileError("{}: const op {!r} has no value".format(model_path, name))
        value = decoder.decode(op.attributes["val"], "const {!r}".format(op.outputs[0].name))
        value = _as_dtype(value, plan.outputs[0][1])
        if isinstance(value, np.ndarray) and value.dtype == np.float16:
            plan.half = True                      # widened once: no cast per prediction
            value = value.astype(np.float32)
        plan.const = value
        return plan
    opdef = OPS.get(op.type)
    if opdef is None:
        raise UnsupportedError("op", op.type, name, model_path)
    plan.fn, plan.lists = opdef.fn, opdef.lists
    inline_half = True          # every inline float value is float16-typed
    for key, arg in op.inputs.items():
        sources = []
        for binding in arg.arguments:
            if binding.WhichOneof("binding") == "name":
                sources.append(("var", binding.name))
            else:
                what = "{} {!r} input {!r}".format(op.type, name, key)
                value = decoder.decode(binding.value, what)
                inline_half = inline_half and _half_or_not_float(value)
                sources.append(("val", _compute_form(value), _compute_form(_round16(value))))
        plan.inputs.append((key, key in opdef.lists, sources))
    for key, attr in op.attributes.items():
        if key != "name" and key not in op.inputs:
            value = decoder.decode(attr, "{} {!r} attribute {!r}".format(op.type, name, key))
            inline_half = inline_half and _half_or_not_float(value)
            plan.inputs.append((key, False, [("val", _compute_form(value),
                                              _compute_form(_round16(value)))]))
    plan.blocks = [compile_block(b, decoder, model_path) for b in op.blocks]
    plan.exact = opdef.exact and inline_half
    return plan


def _half_or_not_float(value):
    if isinstance(value, list):
        return all(_half_or_not_float(v) for v in value)
    return not isinstance(value, np.ndarray) or value.dtype.kind != "f" \
        or value.dtype == np.float16


# --- running a plan -------------------------------------------------------------------------

class Context:
    """What an op function may know about the op being run, and a way to run nested blocks."""

    __slots__ = ("runner", "op", "op_type", "op_name", "precision", "where")

    def __init__(self, runner, op):
        self.runner = runner
        self.op = op
        self.op_type = op.type
        self.op_name = op.name
        self.precision = runner.precision
        self.where = runner.where

    @property
    def blocks(self):
        return self.op.blocks

    def out_dtype(self, i=0):
        """numpy dtype the program declares for output ``i`` (None for non-tensors)."""
        return self.op.outputs[i][1]

    def out_shape(self, i=0):
        """Declared shape of output ``i``: ints, None for unknown dims; None if unknown rank."""
        return self.op.outputs[i][2]

    def run_block(self, block, bindings):
        """Run a nested block (control flow) with its inputs bound; return its outputs."""
        return self.runner.run_block(block, bindings)

    # --- errors that already carry the op's name (the loop lets them through) ---

    def shape_error(self, message):
        return InvalidModelError(message, self.op_type, self.op_name, self.runner.path, kind="op")

    def unsupported(self, what):
        return UnsupportedError("op", self.op_type, self.op_name, self.runner.path, what)

    def runtime_check_failed(self, message):
        return RuntimeCheckError("{} op {!r}{}: {}".format(self.op_type, self.op_name, self.where,
                                                          message))


class Runner:
    def __init__(self, model_name, path, precision, trace):
        self.model_name = model_name
        self.path = path
        self.where = " in {}".format(path) if path else ""
        self.precision = precision
        self.fp16 = precision == "fp16"
        self.trace = trace
        self.env = {}
        self.half = set()       # names of float16 variables, held in compute form

    def run_block(self, block, bindings=(), scoped=True):
        """Run ``block``'s ops in order; return its outputs.

        A scoped (nested) block sees the enclosing variables, and its own vanish after it."""
        saved = self.env
        if scoped:
            self.env = dict(saved)
        try:
            for (name, dtype), value in zip(block.inputs, bindings):
                self.bind(name, value, dtype)
            for op, drop in zip(block.ops, block.drops):
                if op.fn is None:
                    self._run_const(op)
                else:
                    self._run_op(op)
                for name in drop:
                    self.env.pop(name, None)
            try:
                return [self._lookup(name, "block output") for name in block.outputs]
            except InvalidModelError as e:
                raise InvalidModelError("{}: {}".format(self.model_name, e)) from None
        finally:
            if scoped:
                self.env = saved

    def _run_const(self, op):
        value = op.const
        if self.fp16 and not op.half:
            # Weights live in float16 on GPU / Neural Engine.
            if op.const16 is None:
                op.const16 = _round16(value)
            value = op.const16
        name = op.outputs[0][0]
        self.env[name] = value
        if op.half:
            self.half.add(name)
        if self.trace is not None:
            self.trace(name, op.type, self.declared(name), op.name)

    def _run_op(self, op):
        folded = op.folded.get(self.precision)
        if folded is not None:
            return self._publish(op, folded)
        ctx = Context(self, op)
        try:
            kwargs, halves = self._bind(op)
            exact = op.exact and halves     # its float16 results need no rounding
            result = op.fn(ctx, **kwargs)
            outs = op.outputs
            results = list(result) if isinstance(result, (tuple, list)) and len(outs) != 1 \
                else [result]
            if len(results) != len(outs):
                raise ValueError("produced {} outputs, the program declares {}".format(
                    len(results), len(outs)))
            values = [self._finish(ctx, v, out, exact) for v, out in zip(results, outs)]
        except InvalidModelError as e:   # from a shared kernel or a dangling input: name the op
            raise e.at(op.type, op.name, self.path, kind="op") from None
        except EvaluatorError:
            raise
        except Exception as e:
            raise LayerError(op.type, op.name, "{}: {}".format(type(e).__name__, e),
                             self.path) from e
        if op.type.startswith("constexpr_"):     # compressed weights: constant per precision
            for value in values:
                value.setflags(write=False)
            op.folded[self.precision] = values
        self._publish(op, values)

    def _publish(self, op, values):
        for (name, dtype, _), value in zip(op.outputs, values):
            self.env[name] = value
            if dtype == np.float16:
                self.half.add(name)
            if self.trace is not None:
                self.trace(name, op.type, self.declared(name), op.name)

    def _bind(self, op):
        """(keyword arguments, whether every float variable among them holds float16 values:
        a float16 one, or any in fp16 mode, where every float value is rounded)."""
        kwargs = {}
        halves = True
        for key, is_list, sources in op.inputs:
            items = []
            for src in sources:
                if src[0] == "var":
                    value = self._lookup(src[1], "input " + key)
                    if halves and not self.fp16 and src[1] not in self.half \
                            and _holds_floats(value):
                        halves = False
                    items.append(_compute_form(value))
                else:
                    items.append(src[2 if self.fp16 else 1])
            if is_list:
                kwargs[key] = items
            elif len(items) == 1:
                kwargs[key] = items[0]
            else:
                raise ValueError("input {!r} binds {} values, expected one".format(key, len(items)))
        return kwargs, halves

    def _lookup(self, name, what):
        try:
            return self.env[name]
        except KeyError:
            raise InvalidModelError("{} refers to variable {!r}, which no input or earlier op "
                                    "produces".format(what, name)) from None

    def _finish(self, ctx, value, out, exact=False):
        """Give a result the declared dtype, check its shape, round it in fp16 mode.
        ``exact``: its values are already float16 values (an exact op on float16 inputs)."""
        _, dtype, declared = out
        if dtype is None:                         # list / tuple / state: as produced
            return value
        value = np.asarray(value)
        exact = exact and value.dtype == np.float32
        if dtype == np.float16:                  # held as float32 float16 values
            value = value if exact else _half_form(value)
        else:
            value = _as_dtype(value, dtype)
        if declared is not None and not _shape_matches(value.shape, declared):
            raise ctx.shape_error("computed shape {} but the program declares {}".format(
                list(value.shape), ["?" if d is None else d for d in declared]))
        return _round16(value) if self.fp16 and dtype != np.float16 and not exact else value

    def store(self, value, dtype):
        """``value`` as a variable of ``dtype`` holds it (float16: in compute form)."""
        if dtype == np.float16:
            return _half_form(np.asarray(value))
        if dtype is not None:
            value = _as_dtype(np.asarray(value), dtype)
            if self.fp16:
                value = _round16(value)
        return value

    def bind(self, name, value, dtype):
        self.env[name] = self.store(value, dtype)
        if dtype == np.float16:
            self.half.add(name)

    def declared(self, name):
        """Variable ``name`` in its declared dtype (float16 ones back to float16)."""
        value = self.env[name]
        if name in self.half and isinstance(value, np.ndarray) and value.dtype != np.float16:
            return half_values_to_float16(value)       # it holds float16 values exactly
        return value


def _as_dtype(value, dtype):
    if dtype is None or dtype == object or not isinstance(value, np.ndarray) \
            or value.dtype == dtype:
        return value
    return value.astype(dtype)


def _round16(value):
    """Round float32 / float64 values to float16 (inf on overflow), keeping their dtype."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.dtype != np.float16:
        return round_to_float16(value)
    if isinstance(value, list):
        return [_round16(v) for v in value]
    return value


def _half_form(value):
    """A float16 variable's compute form: float32 holding exactly the float16 values."""
    if value.dtype == np.float16:
        return value.astype(np.float32)
    if value.dtype == np.float32:
        return round_to_float16(value)
    with np.errstate(over="ignore", invalid="ignore"):
        return value.astype(np.float16).astype(np.float32)


def _holds_floats(value):
    if isinstance(value, list):
        return any(_holds_floats(v) for v in value)
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _compute_form(value):
    """What op functions see: float16 tensors as float32 (we compute in float32)."""
    if isinstance(value, np.ndarray) and value.dtype == np.float16:
        return value.astype(np.float32)
    if isinstance(value, list):
        return [_compute_form(v) for v in value]
    return value


def _shape_matches(shape, declared):
    return shape == declared or len(shape) == len(declared) and all(
        d is None or d == s for s, d in zip(shape, declared))


def op_name(op):
    attr = op.attributes.get("name")
    if attr is not None and attr.immediateValue.tensor.strings.values:
        return attr.immediateValue.tensor.strings.values[0]
    return op.outputs[0].name if op.outputs else "<unnamed {}>".format(op.type)


# --- the plan cache -------------------------------------------------------------------------

_CACHE = collections.OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


def _file_stamp(path):
    """(path, size, mtime) of every file under a model path: any change recompiles."""
    if os.path.isfile(path):
        files = [path]
    else:
        files = sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
    stamp = []
    for f in files:
        st = os.stat(f)
        stamp.append((f, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def compiled(loaded):
    """(function proto, BlockPlan) of the model's main function, cached per model file, and
    kept on the LoadedModel: running it again skips even the files' stamp (a walk of the
    package), as a runtime keeps a compiled model."""
    kept = getattr(loaded, "_ml_plan", None)
    if kept is not None and kept[0] is loaded.spec:
        return kept[1], kept[2]
    fn, block = main_block(loaded)
    fn, plan = _compiled(loaded, fn, block)
    if loaded.path:                  # an in-memory spec may be edited between runs
        try:
            loaded._ml_plan = (loaded.spec, fn, plan)
        except AttributeError:       # a frozen object: look it up every time
            pass
    return fn, plan


def _compiled(loaded, fn, block):
    key = None
    if loaded.path and os.path.exists(loaded.path):
        key = (os.path.realpath(loaded.path), _file_stamp(loaded.path))
        with _CACHE_LOCK:
            if key in _CACHE:
                _CACHE.move_to_end(key)
                return fn, _CACHE[key]
    decoder = ValueDecoder(loaded.weights_dir, loaded.name)
    plan = compile_block(block, decoder, loaded.path)
    named = {out.name for out in loaded.spec.description.output}   # collect_outputs' names
    plan.drops = [tuple(name for name in drop if name not in named) for drop in plan.drops]
    if key is not None:
        with _CACHE_LOCK:
            _CACHE[key] = plan
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return fn, plan


def clear_cache():
    with _CACHE_LOCK:
        _CACHE.clear()


# --- the function's inputs and outputs ------------------------------------------------------

def main_block(loaded):
    program = loaded.spec.mlProgram
    if "main" not in program.functions:
        raise ModelFileError("{}: ML Program has no 'main' function (has {})".format(
            loaded.name, sorted(program.functions)))
    fn = program.functions["main"]
    return fn, function_block(fn, loaded.name)


def function_block(fn, where):
    """The block of a function for its own opset (or its only block)."""
    blocks = fn.block_specializations
    if fn.opset in blocks:
        return blocks[fn.opset]
    if len(blocks) == 1:
        return next(iter(blocks.values()))
    raise ModelFileError("{}: function has no block for its opset {!r}".format(where, fn.opset))


def check_inputs(loaded, fn, inputs):
    """Inputs as the function declares them, or InputError naming what is wrong."""
    if not hasattr(inputs, "keys"):
        raise InputError("inputs must be a dict of input name -> array, not {}".format(
            type(inputs).__name__))
    specs = input_specs(loaded, fn)
    if any(name not in specs for name in inputs):
        raise InputError("{}: unknown input(s) {} (the model takes {})".format(
            loaded.name, sorted(set(inputs) - set(specs)), list(specs)))
    feeds = []
    for name, spec in specs.items():
        if name not in inputs:
            raise InputError("{}: missing input {!r} (the model takes {})".format(
                loaded.name, name, list(specs)))
        value = inputs[name]
        if spec.image is not None:       # the program itself scales / biases the pixels
            value = image_pixels(loaded.name, name, value, spec.image)
        feeds.append((spec.named, _check_input(loaded, spec, value)))
    return feeds


InputSpec = collections.namedtuple("InputSpec", "named want want_name image allowed declared")


def input_specs(loaded, fn):
    """{name: InputSpec} of the function's inputs (states aside): what checking an input
    needs from the spec, read once per model file, as ``compiled`` keeps its plan."""
    kept = getattr(loaded, "_ml_inputs", None)
    if kept is not None and kept[0] is loaded.spec:
        return kept[1]
    described = {f.name: f.type for f in loaded.spec.description.input}
    specs = collections.OrderedDict()
    for named in fn.inputs:
        if _is_state(named):            # bound to the State, not given (``bind_states``)
            continue
        if named.type.WhichOneof("type") != "tensorType":
            raise InputError("{}: input {!r} is not a tensor; only tensor inputs are "
                             "supported".format(loaded.name, named.name))
        data_type = named.type.tensorType.dataType
        kind = described[named.name].WhichOneof("Type") if named.name in described else None
        specs[named.name] = InputSpec(
            named, numpy_dtype(data_type, "input " + named.name), DTYPE_NAMES.get(data_type),
            described[named.name].imageType if kind == "imageType" else None,
            allowed_shapes(described[named.name].multiArrayType)
            if kind == "multiArrayType" else None,
            tensor_shape(named.type))
    if loaded.path:                      # an in-memory spec may be edited between runs
        try:
            loaded._ml_inputs = (loaded.spec, specs)
        except AttributeError:
            pass
    return specs


def _check_input(loaded, spec, value):
    name = spec.named.name
    arr = as_declared(loaded.name, name, value, spec.want, spec.want_name)
    if spec.allowed is not None:
        check_allowed_shape(loaded.name, name, arr.shape, spec.allowed)
    if spec.declared is not None and not _shape_matches(arr.shape, spec.declared):
        raise InputError("{}: input {!r} has shape {}, expected {}".format(
            loaded.name, name, list(arr.shape),
            ["?" if d is None else d for d in spec.declared]))
    return arr


class _Declared:
    """The runner's variables as ``collect_outputs`` reads them: in their declared dtypes."""

    def __init__(self, runner):
        self.runner = runner

    def __contains__(self, name):
        return name in self.runner.env

    def __getitem__(self, name):
        return self.runner.declared(name)


def collect_outputs(loaded, block, env):
    description = loaded.spec.description.output
    results = {}
    for i, out in enumerate(description):
        if out.name in env:
            value = env[out.name]
        elif i < len(block.outputs):
            value = env[block.outputs[i]]
        else:
            raise ModelFileError("{}: output {!r} is not produced by the program".format(
                loaded.name, out.name))
        kind = out.type.WhichOneof("Type")
        if kind in ("dictionaryType", "stringType", "int64Type"):   # a classifier's outputs
            results[out.name] = _feature_value(value)
            continue
        dtype = None
        if kind == "multiArrayType":
            dtype = ARRAY_DTYPES.get(out.type.multiArrayType.dataType)
        value = np.asarray(value)
        results[out.name] = value.astype(dtype) if dtype is not None else value
    return results


def _feature_value(value):
    """A label or {label: probability} as MLModel.predict gives them: Python str / int."""
    if isinstance(value, dict):
        return value
    item = np.asarray(value).reshape(-1)[0]
    return item.item() if hasattr(item, "item") else item


def _is_state(named):
    return named.type.WhichOneof("type") == "stateType"


def bind_states(loaded, fn, env, state):
    """Bind the function's state inputs to ``state``'s buffers (a fresh zeroed State when
    None: one call of a fresh model, as ``MLModel.make_state()`` starts)."""
    from coreml_reference.states import check_state
    names = [named.name for named in fn.inputs if _is_state(named)]
    if not names:
        return
    state = check_state(loaded, state)
    for name in names:
        env[name] = state.ref(name)


def run(loaded, inputs, precision="fp32", trace=None, state=None):
    fn, block = main_block(loaded)
    feeds = check_inputs(loaded, fn, inputs)
    fn, plan = compiled(loaded)
    runner = Runner(loaded.name, loaded.path, precision, trace)
    for named, value in feeds:
        runner.bind(named.name, value, tensor_dtype(named.type))
    bind_states(loaded, fn, runner.env, state)
    with np.errstate(all="ignore"):     # inf / nan are results here, as on device
        runner.run_block(plan, scoped=False)
    return collect_outputs(loaded, plan, _Declared(runner))
