"""How we compare an evaluated output with PyTorch's golden output — stated once.

Tolerances, and why:
- fp32: the evaluator and PyTorch both compute in float32 but sum in different orders, so
  errors are a few float32 ulps amplified by depth: we require SNR >= 60 dB and a max abs
  error <= 1e-3 of the output's scale (max |golden|, at least 1).
- fp16: an emulation of GPU / Neural Engine float16 (10-bit mantissa, ~3 decimal digits);
  errors compound through ~30 layers, so it is reported, not held to fp32 bounds; we flag it
  below 20 dB SNR.
"""
from __future__ import annotations

import numpy as np

FP32_MIN_SNR_DB = 60.0
FP32_MAX_ABS_REL = 1e-3
FP16_MIN_SNR_DB = 20.0


def max_abs_error(actual, expected):
    actual, expected = _pair(actual, expected)
    if actual.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)))


def snr_db(actual, expected):
    """10*log10(signal power / error power); inf when equal, -inf... never NaN for finite input."""
    actual, expected = _pair(actual, expected)
    if not np.all(np.isfinite(actual)):
        return float("-inf")
    noise = float(np.sum((actual - expected) ** 2))
    signal = float(np.sum(expected ** 2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def within_tolerance(actual, expected, precision="fp32"):
    """True when ``actual`` matches ``expected`` within the stated tolerance for ``precision``."""
    actual, expected = _pair(actual, expected)
    snr = snr_db(actual, expected)
    if precision == "fp16":
        return snr >= FP16_MIN_SNR_DB
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    return snr >= FP32_MIN_SNR_DB and max_abs_error(actual, expected) <= FP32_MAX_ABS_REL * scale


def top_k(values, k=5):
    """Indices of the k largest entries of a 1-D score vector (ties broken by index)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    return [int(i) for i in np.argsort(-flat, kind="stable")[:k]]


def _pair(actual, expected):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ValueError("shape {} differs from the golden shape {}".format(actual.shape, expected.shape))
    return actual, expected
