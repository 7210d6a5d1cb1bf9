"""activation (ReLU, leaky, PReLU, tanh, scaledTanh, sigmoid, sigmoidHard, linear, ELU,
thresholdedReLU, softsign, softplus, parametricSoftplus), plus gelu, erf, clampedReLU."""
from __future__ import annotations

import numpy as np

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
    return np.maximum(x, 0)


@activation_kind("leakyReLU")
def leaky_relu(ctx, q, x):
    return np.where(x >= 0, x, np.float32(q.alpha) * x)


@activation_kind("thresholdedReLU")
def thresholded_relu(ctx, q, x):
    return np.where(x >= q.alpha, x, 0)


@activation_kind("tanh")
def tanh(ctx, q, x):
    return np.tanh(x)


@activation_kind("scaledTanh")
def scaled_tanh(ctx, q, x):
    return np.float32(q.alpha) * np.tanh(np.float32(q.beta) * x)


@activation_kind("sigmoid")
def sigmoid(ctx, q, x):
    return _sigmoid(x)


def _sigmoid(x):
    # 0.5*(1+tanh(x/2)) is sigmoid without exp overflow for large |x|.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@activation_kind("sigmoidHard")
def sigmoid_hard(ctx, q, x):
    return np.clip(np.float32(q.alpha) * x + np.float32(q.beta), 0, 1)


@activation_kind("linear")
def linear(ctx, q, x):
    return np.float32(q.alpha) * x + np.float32(q.beta)


@activation_kind("ELU")
def elu(ctx, q, x):
    return np.where(x >= 0, x, np.float32(q.alpha) * np.expm1(np.minimum(x, 0)))


@activation_kind("softsign")
def softsign(ctx, q, x):
    return x / (1 + np.abs(x))


@activation_kind("softplus")
def softplus(ctx, q, x):
    return np.logaddexp(np.float32(0), x)


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
    return alpha * np.logaddexp(np.float32(0), beta * x)


def _params(weight_params, ctx):
    from coreml_reference.neuralnetwork.context import decode_weights
    return ctx.round(decode_weights(weight_params, ctx))


def erf(x):
    try:
        from scipy.special import erf as scipy_erf
        return scipy_erf(x).astype(np.float32)
    except ImportError:       # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7
        sign = np.sign(x)
        a = np.abs(x).astype(np.float64)
        t = 1.0 / (1.0 + 0.3275911 * a)
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


@register("erf")
def erf_layer(ctx, p, inputs):
    return erf(inputs[0])


@register("gelu")
def gelu(ctx, p, inputs):
    x = inputs[0]
    if p.mode == 0:     # EXACT
        return 0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))
    if p.mode == 1:     # TANH_APPROXIMATION
        return 0.5 * x * (1.0 + np.tanh(np.float32(np.sqrt(2.0 / np.pi)) * (x + 0.044715 * x ** 3)))
    return x * _sigmoid(np.float32(1.702) * x)   # SIGMOID_APPROXIMATION


@register("clampedReLU")
def clamped_relu(ctx, p, inputs):
    x = inputs[0]
    return np.minimum(np.float32(p.beta), np.where(x >= 0, x, np.float32(p.alpha) * x))
