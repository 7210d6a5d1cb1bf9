"""Control flow: ops whose bodies are nested blocks, run through the same op loop."""
from __future__ import annotations

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
