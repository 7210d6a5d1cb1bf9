"""uniDirectionalLSTM (rank-5 blobs: x [Seq, Batch, C, 1, 1], h0 / c0 [1, Batch, H, 1, 1])."""
from __future__ import annotations

import numpy as np

from coreml_reference.lstm import ACTIVATIONS, run_lstm
from coreml_reference.neuralnetwork.layers.registry import register, shape_list

_NAMES = {"sigmoid": "sigmoid", "tanh": "tanh", "linear": "linear", "ReLU": "relu",
          "sigmoidHard": "sigmoid_hard"}
_GATES = (("i", "inputGate"), ("f", "forgetGate"), ("z", "blockInput"), ("o", "outputGate"))


@register("uniDirectionalLSTM")
def uni_directional_lstm(ctx, p, inputs):
    x = inputs[0]
    n_in, hidden = int(p.inputVectorSize), int(p.outputVectorSize)
    if x.ndim != 5 or x.shape[2] != n_in:
        raise ctx.shape_error("input must be [Seq, Batch, {}, 1, 1], got {}".format(
            n_in, shape_list(x.shape)))
    if p.reverseInput:
        raise ctx.unsupported("reverseInput")
    seq, batch = x.shape[0], x.shape[1]
    states = [a.reshape(batch, hidden) if a is not None else np.zeros((batch, hidden), np.float32)
              for a in (list(inputs[1:3]) + [None, None])[:2]]
    kinds = [a.WhichOneof("NonlinearityType") for a in p.activations] or ["sigmoid", "tanh", "tanh"]
    if any(k not in _NAMES for k in kinds) or len(kinds) != 3:
        raise ctx.unsupported("LSTM activations {}".format(kinds))
    gate, cell, out = (ACTIVATIONS[_NAMES[k]] for k in kinds)
    q, w = p.params, p.weightParams
    w_x = dict((g, ctx.weights(getattr(w, n + "WeightMatrix"), (hidden, n_in), n + "W")) for g, n in _GATES)
    w_h = dict((g, ctx.weights(getattr(w, n + "RecursionMatrix"), (hidden, hidden), n + "R")) for g, n in _GATES)
    bias = dict((g, ctx.weights(getattr(w, n + "BiasVector"), (hidden,), n + "b") if q.hasBiasVectors
                 else np.zeros(hidden, np.float32)) for g, n in _GATES)
    if q.forgetBias:
        bias["f"] = bias["f"] + 1.0
    peephole = None
    if q.hasPeepholeVectors:
        peephole = dict((g, ctx.weights(getattr(w, n + "PeepholeVector"), (hidden,), n + "p"))
                        for g, n in (("i", "inputGate"), ("f", "forgetGate"), ("o", "outputGate")))
    clip = float(q.cellClipThreshold) if q.cellClipThreshold else None
    ys, h, c = run_lstm(x.reshape(seq, batch, n_in), states[0], states[1], w_x, w_h, bias,
                        gate, cell, out, peephole, clip, bool(q.coupledInputAndForgetGate))
    ys = ys if q.sequenceOutput else ys[-1:]
    return [ys.reshape(ys.shape[0], batch, hidden, 1, 1), h.reshape(1, batch, hidden, 1, 1),
            c.reshape(1, batch, hidden, 1, 1)]
