"""pooling: MAX / AVERAGE / L2 over [..., C, H, W], with VALID (+explicit amounts), SAME,
INCLUDE_LAST_PIXEL (Caffe's ceil mode) padding, avgPoolExcludePadding and global pooling."""
from __future__ import annotations

import numpy as np

from coreml_reference.neuralnetwork.layers.conv import border_amounts, same_split, windows
from coreml_reference.neuralnetwork.layers.registry import pad_hw, pair, register, require_rank

MAX, AVERAGE, L2 = 0, 1, 2


@register("pooling")
def pooling(p, inputs, ctx):
    x = inputs[0]
    require_rank(x, 4, ctx)
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    if p.globalPooling:
        (kh, kw), (sh, sw), pads, out_hw = (h, w), (1, 1), (0, 0, 0, 0), (1, 1)
    else:
        kh, kw = pair(p.kernelSize, 3)
        sh, sw = pair(p.stride, 1)
        pads, out_hw = _padding(p, h, w, kh, kw, sh, sw)
    ho, wo = out_hw
    if ho <= 0 or wo <= 0:
        raise ctx.shape_error("kernel {}x{} does not fit the padded input {}x{}".format(
            kh, kw, h + pads[0] + pads[1], w + pads[2] + pads[3]))
    # Windows may run past the explicit padding (ceil mode): pad further, and keep two masks
    # saying which cells are real pixels and which are real-or-declared-padding.
    top, bottom, left, right = pads
    extra_h = max(0, (ho - 1) * sh + kh - (h + top + bottom))
    extra_w = max(0, (wo - 1) * sw + kw - (w + left + right))
    xb = x.reshape(-1, c, h, w)
    kind = p.type
    if (kh, kw) == (sh, sw) and not any(pads) and not extra_h and not extra_w \
            and kind in (MAX, AVERAGE):
        # tiling windows (e.g. 2x2 stride 2, or 1x1): a reshape, no padding or strides;
        # VALID drops the rows / columns no window reaches.
        return _tiled(xb[:, :, :ho * kh, :wo * kw], kind, kh, kw).reshape(lead + (c, ho, wo))
    fill = -np.inf if kind == MAX else 0.0
    xp = pad_hw(xb, top, bottom + extra_h, left, right + extra_w, fill)
    view = windows(xp, (kh, kw), (sh, sw), (1, 1), (ho, wo))
    if kind == MAX:
        out = view.max(axis=(-2, -1))
    elif kind == AVERAGE:
        out = view.sum(axis=(-2, -1)) / _divisor(p, h, w, pads, (extra_h, extra_w), (kh, kw), (sh, sw), (ho, wo))
    elif kind == L2:
        out = np.sqrt(np.square(view).sum(axis=(-2, -1)))
    else:
        raise ctx.unsupported("pooling type {}".format(kind))
    return out.reshape(lead + (c, ho, wo))


def _tiled(xb, kind, kh, kw):
    """Non-overlapping windows: combine the kh*kw strided taps (no window view to reduce)."""
    if (kh, kw) == (1, 1):
        return xb
    taps = [xb[:, :, i::kh, j::kw] for i in range(kh) for j in range(kw)]
    out = taps[0].copy()
    combine = np.maximum if kind == MAX else np.add
    for tap in taps[1:]:
        combine(out, tap, out=out)
    if kind == AVERAGE:
        out /= np.float32(kh * kw)
    return out


def _padding(p, h, w, kh, kw, sh, sw):
    """((top, bottom, left, right), (H_out, W_out)) per the padding type's formula."""
    which = p.WhichOneof("PoolingPaddingType")
    if which == "same":
        ho, wo = -(-h // sh), -(-w // sw)
        th = max(0, (ho - 1) * sh + kh - h)
        tw = max(0, (wo - 1) * sw + kw - w)
        return same_split(th, tw, p.same.asymmetryMode), (ho, wo)
    if which == "includeLastPixel":
        ph, pw = pair(p.includeLastPixel.paddingAmounts, 0)
        return (ph, ph, pw, pw), (_ceil_size(h, kh, sh, ph), _ceil_size(w, kw, sw, pw))
    pads = border_amounts(p.valid.paddingAmounts)
    ho = (h + pads[0] + pads[1] - kh) // sh + 1
    wo = (w + pads[2] + pads[3] - kw) // sw + 1
    return pads, (ho, wo)


def _ceil_size(size, kernel, stride, pad):
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:   # last window must start inside
        out -= 1
    return out


def _divisor(p, h, w, pads, extra, kernel, stride, out_hw):
    """How many cells each average divides by: real pixels only (avgPoolExcludePadding) or
    real pixels plus declared padding — never the ceil-mode overhang."""
    top, bottom, left, right = pads
    ones = np.ones((1, 1, h, w), dtype=np.float32)
    if p.avgPoolExcludePadding:
        mask = np.pad(ones, ((0, 0), (0, 0), (top, bottom + extra[0]), (left, right + extra[1])))
    else:
        mask = np.pad(ones, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=1.0)
        mask = np.pad(mask, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    counts = windows(mask, kernel, stride, (1, 1), out_hw).sum(axis=(-2, -1))
    return np.maximum(counts[0, 0], 1.0)
