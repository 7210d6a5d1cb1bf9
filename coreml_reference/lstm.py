"""One LSTM cell loop for both evaluators: the NeuralNetwork ``uniDirectionalLSTM`` layer and
the MIL ``lstm`` op differ only in how they lay out weights and name activations."""
from __future__ import annotations

import numpy as np

from coreml_reference import activations as act


def run_lstm(x, h, c, w_x, w_h, bias, gate, cell, out, peephole=None, clip=None,
             coupled=False):
    """x (seq, batch, input); h, c (batch, hidden); w_x {gate: (hidden, input)}, w_h
    {gate: (hidden, hidden)}, bias {gate: (hidden,)} for gates i, f, o, z; ``gate``,
    ``cell``, ``out``: the recurrent, cell and output activations; peephole {i, f, o}.
    Returns (every step's h (seq, batch, hidden), last h, last c)."""
    steps = []
    for x_t in x:
        pre = dict((g, x_t @ w_x[g].T + h @ w_h[g].T + bias[g]) for g in "ifoz")
        if peephole is not None:
            pre["i"] = pre["i"] + peephole["i"] * c
            pre["f"] = pre["f"] + peephole["f"] * c
        f = gate(pre["f"])
        i = 1.0 - f if coupled else gate(pre["i"])
        c = f * c + i * cell(pre["z"])
        if clip is not None:
            c = np.clip(c, -clip, clip)
        o_pre = pre["o"] + (peephole["o"] * c if peephole is not None else 0.0)
        h = gate(o_pre) * out(c)
        steps.append(h)
    return np.stack(steps).astype(np.float32), h.astype(np.float32), c.astype(np.float32)


ACTIVATIONS = {"sigmoid": act.sigmoid, "tanh": np.tanh, "linear": lambda x: x,
               "relu": act.relu, "sigmoid_hard": act.hard_sigmoid}
