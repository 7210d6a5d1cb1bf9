"""lstm (iOS15): x (seq, batch, input) -> every h (seq or 1, batch, hidden), last h and c
(batch, hidden); weights stacked in i, f, o, z (ifoz) order."""
from __future__ import annotations

import numpy as np

from coreml_reference.lstm import ACTIVATIONS, run_lstm
from coreml_reference.mlprogram.registry import register, scalar


@register("lstm")
def lstm(ctx, x, initial_h, initial_c, weight_ih, weight_hh, bias=None, peephole=None,
         weight_ih_back=None, weight_hh_back=None, bias_back=None, peephole_back=None,
         direction="forward", output_sequence=False, recurrent_activation="sigmoid",
         cell_activation="tanh", activation="tanh", clip=None):
    direction = scalar(direction)
    if direction != "forward":
        raise ctx.unsupported("direction {!r}".format(direction))
    x = np.asarray(x, dtype=np.float32)
    hidden = np.shape(weight_hh)[-1]
    names = [scalar(a) for a in (recurrent_activation, cell_activation, activation)]
    if any(n not in ACTIVATIONS for n in names):
        raise ctx.unsupported("activations {}".format(names))
    split = lambda a: dict(zip("ifoz", np.split(np.asarray(a, dtype=np.float32), 4, axis=0)))
    b = split(bias) if bias is not None else dict((g, np.zeros(hidden, np.float32)) for g in "ifoz")
    peep = (dict(zip("ifo", np.split(np.asarray(peephole, np.float32), 3)))
            if peephole is not None else None)
    batch = x.shape[1]
    h0 = np.asarray(initial_h, np.float32).reshape(batch, hidden)
    c0 = np.asarray(initial_c, np.float32).reshape(batch, hidden)
    ys, h, c = run_lstm(x, h0, c0, split(weight_ih), split(weight_hh), b,
                        *(ACTIVATIONS[n] for n in names), peephole=peep,
                        clip=float(scalar(clip)) if clip is not None else None)
    return (ys if bool(scalar(output_sequence)) else ys[-1:]), h, c
