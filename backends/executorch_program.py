"""Read an ExecuTorch program (.pte) and run it on a host without ExecuTorch's Core ML backend.

On Linux ExecuTorch's pybindings load a .pte but cannot execute its Core ML delegate calls
("Backend CoreMLBackend is not registered"). ``run`` therefore walks the program's own
instruction list, as the ExecuTorch runtime would:

- a ``KernelCall`` (an op left outside Core ML, which runs on ExecuTorch's CPU kernels on a
  device) is run by torch's kernel of the same name and overload (``aten::acosh.out``),
  with the program's own argument values;
- a ``DelegateCall`` to ``CoreMLBackend`` is answered by a callback given the partition's
  index (its order among the program's Core ML delegates, the order in which
  ``extract_coreml_models`` unpacks them) and its input arrays; its arguments are the
  partition's inputs then its outputs, in the order of the Core ML model's description.

Memory planning is ignored (every value is its own tensor). Only the route's env (et)
imports this module's functions; the module itself imports nothing heavy.
"""
from __future__ import annotations

from collections import Counter, OrderedDict

COREML_BACKEND_ID = "CoreMLBackend"
DELEGATE_OP = "executorch_call_delegate"


class ProgramError(Exception):
    """The .pte holds something this reader cannot run (one line, naming it)."""


def read(path):
    """The deserialized program of the .pte at ``path`` (``executorch.exir.schema.Program``)."""
    from executorch.exir._serialize._program import deserialize_pte_binary
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (IOError, OSError) as e:
        raise ProgramError("cannot read {}: {}".format(path, e.strerror or e))
    try:
        return deserialize_pte_binary(data).program
    except Exception as e:  # noqa: BLE001 — flatbuffer errors have many classes
        raise ProgramError("{} is not an ExecuTorch program: {}: {}".format(
            path, type(e).__name__, str(e).strip().splitlines()[-1] if str(e).strip() else ""))


def forward_plan(program):
    plans = dict((plan.name, plan) for plan in program.execution_plan)
    if "forward" in plans:
        return plans["forward"]
    if len(program.execution_plan) == 1:
        return program.execution_plan[0]
    raise ProgramError("the program has methods {} and no 'forward'".format(", ".join(plans)))


def coreml_delegates(plan):
    """{delegate index in the plan: partition index}, Core ML delegates only, in plan order."""
    found = OrderedDict()
    for index, delegate in enumerate(plan.delegates):
        if delegate.id == COREML_BACKEND_ID:
            found[index] = len(found)
    return found


def instruction_ops(plan):
    """Counter of what the program executes: ``aten::acosh.out`` per kernel call and
    ``executorch_call_delegate`` per delegate call (the lowered graph as it was saved)."""
    ops = Counter()
    for chain in plan.chains:
        for instruction in chain.instructions:
            kind = type(instruction.instr_args).__name__
            if kind == "KernelCall":
                ops[operator_name(plan.operators[instruction.instr_args.op_index])] += 1
            elif kind == "DelegateCall":
                ops[DELEGATE_OP] += 1
    return ops


def operator_name(operator):
    return "{}.{}".format(operator.name, operator.overload) if operator.overload else operator.name


def io_tensors(plan, indices):
    """[{"shape", "dtype"}] of the plan's input or output values (non-tensors: their kind)."""
    facts = []
    for index in indices:
        value = plan.values[index].val
        if type(value).__name__ == "Tensor":
            facts.append({"shape": [int(s) for s in value.sizes],
                          "dtype": str(_torch_dtype(value.scalar_type)).replace("torch.", "")})
        else:
            facts.append({"kind": type(value).__name__})
    return facts


# --- running it -------------------------------------------------------------------------------

def run(program, inputs, call_partition):
    """Run the forward method on ``inputs`` (a list of arrays, in the program's input order);
    ``call_partition(partition index, [argument arrays]) -> [output arrays]`` answers each
    Core ML delegate call (its arguments are the partition's inputs, then its outputs). Returns the list of output arrays."""
    import numpy as np
    import torch
    plan = forward_plan(program)
    runner = _Runner(program, plan, call_partition)
    if len(inputs) != len(plan.inputs):
        raise ProgramError("the program takes {} input(s), {} given".format(len(plan.inputs), len(inputs)))
    for position, (index, array) in enumerate(zip(plan.inputs, inputs)):
        declared = plan.values[index].val
        array = np.asarray(array)
        if not _fits(array.shape, declared):
            raise ProgramError("input {} has shape {}, the program was exported for {}".format(
                position, list(array.shape), [int(s) for s in declared.sizes]))
        runner.values[index] = torch.from_numpy(np.ascontiguousarray(array)).to(
            _torch_dtype(declared.scalar_type))
    with torch.no_grad():
        runner.execute()
    outputs = []
    for index in plan.outputs:
        value = runner.value(index)
        outputs.append(value.detach().numpy() if isinstance(value, torch.Tensor) else np.asarray(value))
    return outputs


def _fits(shape, declared):
    """A static input takes exactly its sizes; a dynamic-bound one (exported with a
    torch.export Dim) any sizes up to them."""
    sizes = [int(s) for s in declared.sizes]
    if list(shape) == sizes:
        return True
    dynamic = int(getattr(declared.shape_dynamism, "value", declared.shape_dynamism) or 0) != 0
    return dynamic and len(shape) == len(sizes) and all(0 < s <= b for s, b in zip(shape, sizes))


class _Runner(object):
    def __init__(self, program, plan, call_partition):
        self.program = program
        self.plan = plan
        self.call_partition = call_partition
        self.values = {}
        self.partitions = coreml_delegates(plan)
        self.kernels = {}

    def execute(self):
        if len(self.plan.chains) != 1:
            raise ProgramError("the program has {} chains; only one is supported".format(len(self.plan.chains)))
        instructions = self.plan.chains[0].instructions
        pc = 0
        while pc < len(instructions):
            args = instructions[pc].instr_args
            kind = type(args).__name__
            pc += 1
            if kind == "KernelCall":
                self.kernel_call(args)
            elif kind == "DelegateCall":
                self.delegate_call(args)
            elif kind == "MoveCall":
                self.values[args.move_to] = self.value(args.move_from)
            elif kind == "JumpFalseCall":
                if not bool(self.value(args.cond_value_index)):
                    pc = args.destination_instruction
            elif kind == "FreeCall":
                self.values.pop(args.value_index, None)
            else:
                raise ProgramError("instruction {} is not supported".format(kind))

    # values

    def value(self, index):
        """The value at ``index``: computed, a constant tensor, or a scalar / list."""
        import torch
        if index in self.values:
            return self.values[index]
        val = self.plan.values[index].val
        kind = type(val).__name__
        if kind == "Null":
            return None
        if kind == "Int":
            return val.int_val
        if kind == "Bool":
            return val.bool_val
        if kind == "Double":
            return float(val.double_val)
        if kind == "String":
            return val.string_val
        if kind in ("IntList", "TensorList"):
            return [self.value(i) for i in val.items]
        if kind == "OptionalTensorList":
            return [None if i < 0 else self.value(i) for i in val.items]
        if kind in ("DoubleList", "BoolList"):
            return list(val.items)
        if kind == "Tensor":
            if val.data_buffer_idx > 0 and val.allocation_info is None:
                tensor = self.constant(val)
                self.values[index] = tensor
                return tensor
            if val.data_buffer_idx > 0:
                raise ProgramError("value {} is a mutable buffer (state): not supported".format(index))
            # Memory-planned and not yet written: an out argument about to be filled.
            return torch.empty([int(s) for s in val.sizes], dtype=_torch_dtype(val.scalar_type))
        raise ProgramError("value {} of kind {} is not supported".format(index, kind))

    def constant(self, tensor):
        import numpy as np
        import torch
        dtype = _torch_dtype(tensor.scalar_type)
        storage = self.program.constant_buffer[tensor.data_buffer_idx].storage
        sizes = [int(s) for s in tensor.sizes]
        count = int(np.prod(sizes)) if sizes else 1
        item = torch.empty((), dtype=dtype).element_size()
        flat = torch.frombuffer(bytearray(storage[:count * item]), dtype=dtype) if count else \
            torch.empty(0, dtype=dtype)
        order = list(tensor.dim_order)
        if order and order != list(range(len(order))):   # stored in dim order: permute back
            stored = flat.reshape([sizes[d] for d in order])
            return stored.permute([order.index(d) for d in range(len(order))]).contiguous()
        return flat.reshape(sizes)

    # instructions

    def kernel_call(self, call):
        operator = self.plan.operators[call.op_index]
        name = operator_name(operator)
        if name == "executorch_prim::et_view.default":     # self, size, out: a view
            this, size = self.value(call.args[0]), self.value(call.args[1])
            self.values[call.args[2]] = this.reshape(size)
            return
        overload = self.kernel(operator)
        schema = overload._schema
        n_args = len(schema.arguments)
        if len(call.args) != n_args + len(schema.returns):
            raise ProgramError("kernel {} gets {} arguments; torch's schema has {} + {} returns".format(
                name, len(call.args), n_args, len(schema.returns)))
        positional, keyword = [], {}
        for argument, index in zip(schema.arguments, call.args[:n_args]):
            value = self.value(index)
            if argument.kwarg_only:
                keyword[argument.name] = value
            else:
                positional.append(value)
            if argument.alias_info is not None and argument.alias_info.is_write:
                self.values[index] = value           # the out tensor, written in place
        result = overload(*positional, **keyword)
        returns = call.args[n_args:]
        if len(returns) == 1:
            self.values[returns[0]] = result
        else:
            for index, item in zip(returns, result):
                self.values[index] = item

    def kernel(self, operator):
        """torch's kernel for an ExecuTorch operator entry (``aten::acosh`` + ``out``)."""
        key = (operator.name, operator.overload)
        if key not in self.kernels:
            import torch
            _register_executorch_ops()
            namespace, _, op = operator.name.partition("::")
            try:
                packet = getattr(getattr(torch.ops, namespace), op)
                self.kernels[key] = getattr(packet, operator.overload or "default")
            except (AttributeError, RuntimeError):
                raise ProgramError("kernel {} has no torch equivalent here".format(operator_name(operator)))
        return self.kernels[key]

    def delegate_call(self, call):
        import numpy as np
        import torch
        delegate = self.plan.delegates[call.delegate_index]
        if call.delegate_index not in self.partitions:
            raise ProgramError("delegate {} ({}) is not Core ML: cannot run it here".format(
                call.delegate_index, delegate.id))
        partition = self.partitions[call.delegate_index]
        args = list(call.args)
        # The partition's inputs then its outputs (not yet written: empty tensors).
        outputs = self.call_partition(partition, [_as_array(self.value(i)) for i in args])
        if len(outputs) > len(args):
            raise ProgramError("Core ML partition {} returns {} outputs for {} delegate arguments"
                               .format(partition, len(outputs), len(args)))
        for index, array in zip(args[len(args) - len(outputs):], outputs):
            declared = self.plan.values[index].val
            tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(array)))
            sizes = [int(s) for s in declared.sizes]
            if list(tensor.shape) != sizes and tensor.numel() == int(np.prod(sizes) if sizes else 1):
                tensor = tensor.reshape(sizes)         # Core ML may add or drop unit axes
            self.values[index] = tensor.to(_torch_dtype(declared.scalar_type))


def _as_array(value):
    import numpy as np
    import torch
    if isinstance(value, torch.Tensor):
        return value.detach().contiguous().numpy()
    return np.asarray(value)


_REGISTERED = []


def _register_executorch_ops():
    """ExecuTorch's own operator namespaces (dim_order_ops, executorch_prim) become
    ``torch.ops`` entries once their registries are imported."""
    if _REGISTERED:
        return
    import importlib
    for module in ("executorch.exir.passes.dim_order_ops_registry",
                   "executorch.exir.passes.executorch_prim_ops_registry"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    _REGISTERED.append(True)


def _torch_dtype(scalar_type):
    import torch
    table = {0: torch.uint8, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.int64,
             5: torch.float16, 6: torch.float32, 7: torch.float64, 11: torch.bool,
             15: torch.bfloat16}
    code = int(scalar_type)
    if code not in table:
        raise ProgramError("tensor scalar type {} is not supported".format(scalar_type))
    return table[code]
