"""Control flow: ops whose bodies are nested blocks, run through the same op loop."""
from __future__ import annotations

import numpy as np

from coreml_reference.mlprogram.registry import register, scalar

MAX_ITERATIONS = 1_000_000   # a runaway loop is a model bug; stop rather than hang


@register("cond")
def cond(ctx, pred):
    # blocks[0] runs when pred is true, blocks[1] otherwise; their outputs are the op's.
    blocks = ctx.op.blocks
    outputs = ctx.run_block(blocks[0] if bool(scalar(pred)) else blocks[1], [])
    return tuple(outputs) if len(outputs) != 1 else outputs[0]


@register("while_loop", lists=("loop_vars",))
def while_loop(ctx, loop_vars):
    # blocks[0]: condition on the loop variables; blocks[1]: body returning new values.
    cond_block, body = ctx.op.blocks[0], ctx.op.blocks[1]
    values = list(loop_vars)
    for _ in range(MAX_ITERATIONS):
        if not bool(scalar(ctx.run_block(cond_block, values)[0])):
            return tuple(values) if len(values) != 1 else values[0]
        values = ctx.run_block(body, values)
    raise RuntimeError("while_loop ran {} iterations without ending".format(MAX_ITERATIONS))


# --- lists (tensor arrays): values of list type, passed between ops and loop iterations ------

class TensorList:
    """An ML Program list: elements of one shape and dtype; unwritten ones read as zeros.
    Ops never modify a list in place: list_write / list_scatter return a new one."""

    def __init__(self, elements, elem_shape, dtype):
        self.elements = elements
        self.elem_shape = tuple(elem_shape)
        self.dtype = dtype

    def replaced(self, index, value):
        elements = list(self.elements)
        if index < 0:
            index += len(elements)
        if index >= len(elements):
            elements.extend([None] * (index + 1 - len(elements)))
        elements[index] = np.asarray(value, dtype=self.dtype)
        return TensorList(elements, self.elem_shape, self.dtype)

    def read(self, index):
        value = self.elements[index] if -len(self.elements) <= index < len(self.elements) else None
        if value is None:
            if index >= len(self.elements) or index < -len(self.elements):
                raise IndexError("list index {} out of range (length {})".format(
                    index, len(self.elements)))
            return np.zeros(self.elem_shape, self.dtype)
        return value


_DTYPES = {"fp16": np.float32, "fp32": np.float32, "int32": np.int32, "bool": np.bool_}


@register("make_list", lists=("elem_shape",))
def make_list(ctx, elem_shape, init_length=1, dynamic_length=True, dtype="fp32"):
    shape = [int(scalar(d)) for d in elem_shape]
    dtype = _DTYPES.get(str(scalar(dtype)), np.float32)
    return TensorList([None] * int(scalar(init_length)), shape, dtype)


@register("list_length")
def list_length(ctx, ls):
    return np.int32(len(ls.elements))


@register("list_write")
def list_write(ctx, ls, index, value):
    return ls.replaced(int(scalar(index)), value)


@register("list_read")
def list_read(ctx, ls, index):
    return ls.read(int(scalar(index)))


@register("list_gather")
def list_gather(ctx, ls, indices):
    return np.stack([ls.read(int(i)) for i in np.asarray(indices).reshape(-1)])


@register("list_scatter")
def list_scatter(ctx, ls, indices, value):
    for i, v in zip(np.asarray(indices).reshape(-1), np.asarray(value)):
        ls = ls.replaced(int(i), v)
    return ls
