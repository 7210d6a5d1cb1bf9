"""activation (ReLU, leaky, PReLU, tanh, scaledTanh, sigmoid, sigmoidHard, linear, ELU,
thresholdedReLU, softsign, softplus, parametricSoftplus), plus gelu, erf, clampedReLU."""
from __future__ import annotations

import numpy as np

from coreml_reference import activations as act
from coreml_reference.neuralnetwork.layers.registry import register, require_rank

ACTIVATIONS = {}


def activation_kind(name):
    def decorate(function):
        ACTIVATIONS[name] = function
        return function
    return decorate


@register("activation")
def activation(ctx, p, inputs):
    kind = p.WhichOneof("NonlinearityType")
    function = ACTIVATIONS.get(kind)
    if function is None:
        raise ctx.unsupported("activation {}".format(kind))
    return function(ctx, getattr(p, kind), inputs[0])


@activation_kind("ReLU")
def relu(ctx, q, x):
    return act.relu(x)


@activation_kind("leakyReLU")
def leaky_relu(ctx, q, x):
    return act.leaky_relu(x, q.alpha)


@activation_kind("thresholdedReLU")
def thresholded_relu(ctx, q, x):
    return act.thresholded_relu(x, q.alpha)


@activation_kind("tanh")
def tanh(ctx, q, x):
    return np.tanh(x)


@activation_kind("scaledTanh")
def scaled_tanh(ctx, q, x):
    return act.scaled_tanh(x, q.alpha, q.beta)


@activation_kind("sigmoid")
def sigmoid(ctx, q, x):
    return act.sigmoid(x)


@activation_kind("sigmoidHard")
def sigmoid_hard(ctx, q, x):
    return act.hard_sigmoid(x, q.alpha, q.beta)


@activation_kind("linear")
def linear(ctx, q, x):
    return act.linear(x, q.alpha, q.beta)


@activation_kind("ELU")
def elu(ctx, q, x):
    return act.elu(x, q.alpha)


@activation_kind("softsign")
def softsign(ctx, q, x):
    return act.softsign(x)


@activation_kind("softplus")
def softplus(ctx, q, x):
    return act.softplus(x)


def _per_channel(values, x, ctx, what):
    """A length-1 or length-C parameter broadcast along axis -3."""
    require_rank(x, 3, ctx)
    c = x.shape[-3]
    if values.size not in (1, c):
        raise ctx.shape_error("{} has {} values; input has {} channels".format(what, values.size, c))
    return values.reshape(-1, 1, 1)


@activation_kind("PReLU")
def prelu(ctx, q, x):
    alpha = _per_channel(_params(q.alpha, ctx), x, ctx, "alpha")
    return np.where(x >= 0, x, alpha * x)


@activation_kind("parametricSoftplus")
def parametric_softplus(ctx, q, x):
    alpha = _per_channel(_params(q.alpha, ctx), x, ctx, "alpha")
    beta = _per_channel(_params(q.beta, ctx), x, ctx, "beta")
    return alpha * act.softplus(beta * x)


def _params(weight_params, ctx):
    from coreml_reference.neuralnetwork.context import decode_weights
    return ctx.round(decode_weights(weight_params, ctx))


@register("erf")
def erf(ctx, p, inputs):
    return act.erf(inputs[0])


@register("gelu")
def gelu(ctx, p, inputs):
    if p.mode >= len(act.GELU_MODES):
        raise ctx.unsupported("gelu mode {}".format(p.mode))
    return act.gelu(inputs[0], act.GELU_MODES[p.mode])   # the enum in MIL's order


@register("clampedReLU")
def clamped_relu(ctx, p, inputs):
    return act.clamped_relu(inputs[0], p.alpha, p.beta)
