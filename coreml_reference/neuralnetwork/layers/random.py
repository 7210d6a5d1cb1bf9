"""Random layers: randomNormal / randomUniform / randomBernoulli (Static: outputShape;
Like: the input's shape; Dynamic: the shape the input holds) and categoricalDistribution.

A layer with a seed (not -1) draws the same numbers on every prediction, as Core ML's do;
the generator is numpy's, so the numbers are not the device's, only their distribution.
"""
from __future__ import annotations

import numpy as np

from coreml_reference.neuralnetwork.layers.registry import register


def _rng(p):
    return np.random.default_rng(None if p.seed == -1 else int(p.seed) & 0xFFFFFFFF)


def _shape(kind, p, inputs, ctx):
    if kind == "Static":
        return tuple(int(d) for d in p.outputShape)
    if kind == "Like":
        return inputs[0].shape
    values = inputs[0].reshape(-1)
    if values.size and values.min() < 0:
        raise ctx.shape_error("a negative output shape {}".format(values.astype(int).tolist()))
    return tuple(int(d) for d in values)


def _normal(p, rng, shape):
    return rng.normal(p.mean, p.stdDev, shape)


def _uniform(p, rng, shape):
    return rng.uniform(p.minVal, p.maxVal, shape)


def _bernoulli(p, rng, shape):
    return (rng.random(shape) < p.prob).astype(np.float32)


def _register(name, draw):
    for kind in ("Static", "Like", "Dynamic"):
        register("random{}{}".format(name, kind))(
            lambda ctx, p, inputs, kind=kind: draw(p, _rng(p), _shape(kind, p, inputs, ctx)))


for _name, _draw in (("Normal", _normal), ("Uniform", _uniform), ("Bernoulli", _bernoulli)):
    _register(_name, _draw)


@register("categoricalDistribution")
def categorical_distribution(ctx, p, inputs):
    """[..., K] probabilities (or logits, divided by the temperature) -> [..., numSamples]
    sampled class indices."""
    x = inputs[0].astype(np.float64)
    if p.isLogits:
        z = x / (p.temperature or 1.0)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        probs = z / z.sum(axis=-1, keepdims=True)
    else:
        probs = np.clip(x, 0, None) + (p.eps or 0.0)
        probs = probs / probs.sum(axis=-1, keepdims=True)
    rng = _rng(p)
    flat = probs.reshape(-1, probs.shape[-1])
    cumulative = np.cumsum(flat, axis=-1)
    draws = rng.random((flat.shape[0], int(p.numSamples)))
    samples = np.array([np.searchsorted(c, d, side="right") for c, d in zip(cumulative, draws)])
    samples = np.minimum(samples, probs.shape[-1] - 1)
    return samples.reshape(probs.shape[:-1] + (int(p.numSamples),)).astype(np.float32)
