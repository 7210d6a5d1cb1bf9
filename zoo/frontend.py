"""Log-mel front end of PANNs, written so every route can export it.

Module and parameter names follow torchlibrosa (``spectrogram_extractor.stft.conv_real``,
``logmel_extractor.melW``) so official PANNs checkpoints load unchanged. The forward pass
differs from torchlibrosa only where old exporters need it, as the 2020 seed's torchlibrosa
fork did: reflect padding on a 4-D view, ``log(x) / ln 10`` instead of ``log10`` (torch 1.4's
ONNX exporter has none), clamp with ``min`` only.

Runs on torch 1.4 / Python 3.7: keep the code plain.
"""
from __future__ import division

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def hann_window(length):
    """Periodic Hann window (the STFT convention, N in the denominator)."""
    n = np.arange(length)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def stft_kernels(n_fft):
    """Real and imaginary DFT rows times the window, shaped as Conv1d weights (F, 1, n_fft)."""
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)
    angle = -2.0 * np.pi * np.outer(k, n) / n_fft
    window = hann_window(n_fft)
    real = (np.cos(angle) * window)[:, None, :]
    imag = (np.sin(angle) * window)[:, None, :]
    return real.astype(np.float32), imag.astype(np.float32)


_SLANEY_F_SP = 200.0 / 3          # Hz per mel below the break
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _SLANEY_F_SP
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_F_SP
    log = break_mel + np.log(np.maximum(hz, 1e-12) / _SLANEY_BREAK_HZ) / _SLANEY_LOGSTEP
    return np.where(hz >= _SLANEY_BREAK_HZ, log, linear)


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_F_SP
    linear = mel * _SLANEY_F_SP
    log = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOGSTEP * (mel - break_mel))
    return np.where(mel >= break_mel, log, linear)


def mel_matrix(sample_rate, n_fft, n_mels, fmin, fmax):
    """Triangular, area-normalised (Slaney) mel filters as a (n_fft//2+1, n_mels) matrix.

    The same convention as librosa's default ``filters.mel``, which PANNs used; official
    checkpoints carry the matrix itself, so this only seeds fresh models.
    """
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges_hz)
    weights = np.zeros((n_mels, len(fft_hz)))
    for i in range(n_mels):
        rising = (fft_hz - edges_hz[i]) / widths[i]
        falling = (edges_hz[i + 2] - fft_hz) / widths[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.T.astype(np.float32)


class STFT(nn.Module):
    """Holds the two DFT convolutions (names as in torchlibrosa)."""

    def __init__(self, n_fft, hop_length):
        super(STFT, self).__init__()
        bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop_length, bias=False)
        real, imag = stft_kernels(n_fft)
        self.conv_real.weight.data.copy_(torch.from_numpy(real))
        self.conv_imag.weight.data.copy_(torch.from_numpy(imag))
        for p in self.parameters():
            p.requires_grad = False


class Spectrogram(nn.Module):
    """Power spectrogram: (batch, samples) -> (batch, 1, frames, n_fft//2+1)."""

    def __init__(self, n_fft, hop_length, center=True):
        super(Spectrogram, self).__init__()
        self.n_fft = n_fft
        self.center = center
        self.stft = STFT(n_fft, hop_length)

    def forward(self, waveform):
        x = waveform[:, None, None, :]
        if self.center:
            half = self.n_fft // 2
            # Reflect-pad a 4-D view: old exporters only handle 4-D reflect padding, and a
            # slice instead of squeeze loses the rank in onnx-coreml.
            x = F.pad(x, (half, half, 0, 0), mode="reflect")
        x = x.squeeze(2)
        real = self.stft.conv_real(x)[:, None, :, :].transpose(2, 3)
        imag = self.stft.conv_imag(x)[:, None, :, :].transpose(2, 3)
        return real ** 2 + imag ** 2


class LogmelFilterBank(nn.Module):
    """Power spectrogram -> log-mel in dB, 10*log10(max(mel, amin)) with ref = 1."""

    def __init__(self, sample_rate, n_fft, n_mels, fmin, fmax, amin=1e-10):
        super(LogmelFilterBank, self).__init__()
        self.amin = amin
        self.melW = nn.Parameter(torch.from_numpy(mel_matrix(sample_rate, n_fft, n_mels, fmin, fmax)),
                                 requires_grad=False)

    def forward(self, power):
        mel = torch.matmul(power, self.melW)
        # torch 1.4's ONNX exporter has no log10.
        return torch.log(torch.clamp(mel, min=self.amin)) * (10.0 / math.log(10.0))


class LogMel(nn.Module):
    """The PANNs front end on its own: waveform (1, N) -> log-mel (1, 1, frames, mel_bins)."""

    def __init__(self, sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64,
                 fmin=50, fmax=14000):
        super(LogMel, self).__init__()
        self.spectrogram_extractor = Spectrogram(window_size, hop_size)
        self.logmel_extractor = LogmelFilterBank(sample_rate, window_size, mel_bins, fmin, fmax)

    def forward(self, waveform):
        return self.logmel_extractor(self.spectrogram_extractor(waveform))
