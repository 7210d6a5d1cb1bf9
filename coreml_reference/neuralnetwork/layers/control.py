"""Control flow: branch, loop, loopBreak, loopContinue.

The nested networks run on the enclosing network's blobs (``ctx.run_network`` runs one and
returns those blobs): what they produce is visible afterwards, which is how their results
leave them (``copy`` layers onto outer names). These layers have no outputs of their own.
"""
from __future__ import annotations

from coreml_reference.neuralnetwork.context import LoopBreak, LoopContinue
from coreml_reference.neuralnetwork.layers.registry import register


def _truth(ctx, x, what):
    if x.size != 1:
        raise ctx.shape_error("{} must be a scalar, got shape {}".format(what, list(x.shape)))
    return bool(x.reshape(-1)[0])


@register("branch")
def branch(ctx, p, inputs):
    """ifBranch when the scalar condition is non-zero, else elseBranch (if any)."""
    if _truth(ctx, inputs[0], "the branch condition"):
        ctx.run_network(p.ifBranch)
    elif p.HasField("elseBranch"):
        ctx.run_network(p.elseBranch)
    return []


@register("loop")
def loop(ctx, p, inputs):
    """for / while loop, as the proto defines it:
    - no condition network: run the body ``limit`` times;
    - a condition network and no limit: while conditionVar is true;
    - both: while conditionVar is true and fewer than ``limit`` iterations ran.
    The limit is the (optional) input's value, else maxLoopIterations."""
    if inputs:
        limit = int(inputs[0].reshape(-1)[0])
    else:
        limit = int(p.maxLoopIterations)
    has_condition = len(p.conditionNetwork.layers) > 0
    if not has_condition and p.conditionVar:
        raise ctx.shape_error("conditionVar {!r} is set but there is no condition network".format(
            p.conditionVar))
    bounded = not has_condition or limit > 0

    def condition():
        if not has_condition:
            return True
        blobs = ctx.run_network(p.conditionNetwork)
        if p.conditionVar not in blobs:
            raise ctx.shape_error("the condition network does not produce conditionVar {!r}".format(
                p.conditionVar))
        return _truth(ctx, blobs[p.conditionVar], "conditionVar {!r}".format(p.conditionVar))

    count = 0
    while (not bounded or count < limit) and condition():
        try:
            ctx.run_network(p.bodyNetwork)
        except LoopContinue:
            pass
        except LoopBreak:
            break
        count += 1
    return []


@register("loopBreak")
def loop_break(ctx, p, inputs):
    raise LoopBreak()


@register("loopContinue")
def loop_continue(ctx, p, inputs):
    raise LoopContinue()
