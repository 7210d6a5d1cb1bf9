"""PANNs audio taggers (MobileNetV1 / MobileNetV2 backbones) with an export-friendly forward.

Module names and Sequential indices match the official PANNs checkpoints
(``features.1.4.weight`` ...), so ``{'model': state_dict}`` files load with strict checking.
The forward returns ``(clip_output, frame_output, melspec)``: the frame-wise sigmoid after
max_pool1d + avg_pool1d over time, its maximum over time, and the log-mel input.

Runs on torch 1.4 / Python 3.7: keep the code plain.
"""
from __future__ import division

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.frontend import LogmelFilterBank, Spectrogram

PANN_DEFAULTS = dict(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64,
                     fmin=50, fmax=14000, classes_num=527)

# Both backbones halve time and frequency five times.
TIME_RATIO = 32


def upsample_time(x, ratio, mode="flatten"):
    """Repeat each frame ``ratio`` times: (B, T, C) -> (B, T * ratio, C).

    ``mode="panns"`` is PANNs' own helper, which reshapes with sizes read from ``x.shape``;
    traced, that becomes int arithmetic that some converters reject. ``mode="flatten"`` is
    the same computation with no shape arithmetic.
    """
    repeated = x[:, :, None, :].repeat(1, 1, ratio, 1)
    if mode == "panns":
        (batch, frames, classes) = x.shape
        return repeated.reshape(batch, frames * ratio, classes)
    if mode == "flatten":
        return repeated.flatten(1, 2)
    raise ValueError("unknown upsample mode {!r} (expected 'flatten' or 'panns')".format(mode))


def _conv_bn(inp, oup, stride, act):
    return nn.Sequential(nn.Conv2d(inp, oup, 3, 1, 1, bias=False), nn.AvgPool2d(stride),
                         nn.BatchNorm2d(oup), act())


def _conv_dw(inp, oup, stride):
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, 1, 1, groups=inp, bias=False), nn.AvgPool2d(stride),
        nn.BatchNorm2d(inp), nn.ReLU(),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU())


def mobilenet_v1_features():
    # (in, out, stride) of the 13 depthwise-separable blocks after the stem.
    blocks = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
              (256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    layers = [_conv_bn(1, 32, 2, nn.ReLU)] + [_conv_dw(i, o, s) for i, o, s in blocks]
    return nn.Sequential(*layers), 1024


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super(InvertedResidual, self).__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        depthwise = [nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
                     nn.AvgPool2d(stride), nn.BatchNorm2d(hidden), nn.ReLU6()]
        project = [nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        expand = []
        if expand_ratio != 1:
            expand = [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden),
                      nn.ReLU6()]
        self.conv = nn.Sequential(*(expand + depthwise + project))

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


def mobilenet_v2_features():
    # expansion t, channels c, repeats n, first stride s
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 2),
                (6, 160, 3, 1), (6, 320, 1, 1)]
    layers = [_conv_bn(1, 32, 2, nn.ReLU6)]
    channels = 32
    for t, c, n, s in settings:
        for i in range(n):
            layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
            channels = c
    layers.append(nn.Sequential(nn.Conv2d(channels, 1280, 1, 1, 0, bias=False),
                                nn.BatchNorm2d(1280), nn.ReLU6()))
    return nn.Sequential(*layers), 1280


class PannTagger(nn.Module):
    """Log-mel front end -> CNN backbone -> frame-wise and clip-wise sigmoid outputs."""

    def __init__(self, backbone, sample_rate, window_size, hop_size, mel_bins, fmin, fmax,
                 classes_num, upsample_mode="flatten"):
        super(PannTagger, self).__init__()
        self.upsample_mode = upsample_mode
        self.spectrogram_extractor = Spectrogram(window_size, hop_size)
        self.logmel_extractor = LogmelFilterBank(sample_rate, window_size, mel_bins, fmin, fmax)
        self.bn0 = nn.BatchNorm2d(mel_bins)
        self.features, width = backbone()
        self.fc1 = nn.Linear(width, 1024, bias=True)
        self.fc_audioset = nn.Linear(1024, classes_num, bias=True)

    def forward(self, waveform):
        melspec = self.logmel_extractor(self.spectrogram_extractor(waveform))
        x = self.bn0(melspec.transpose(1, 3)).transpose(1, 3)
        x = self.features(x)
        x = torch.mean(x, dim=3)                      # (B, C, T')
        x = F.max_pool1d(x, kernel_size=3, stride=1, padding=1) + \
            F.avg_pool1d(x, kernel_size=3, stride=1, padding=1)
        x = F.relu(self.fc1(x.transpose(1, 2)))       # (B, T', 1024)
        segments = torch.sigmoid(self.fc_audioset(x))  # (B, T', classes)
        clip_output = torch.max(segments, dim=1)[0]
        frame_output = upsample_time(segments, TIME_RATIO, self.upsample_mode)
        return clip_output, frame_output, melspec


class Upsample(nn.Module):
    """PANNs' frame upsampling alone, to show which routes break on its shape arithmetic."""

    def __init__(self, mode="panns"):
        super(Upsample, self).__init__()
        self.mode = mode

    def forward(self, segments):
        return upsample_time(torch.sigmoid(segments), TIME_RATIO, self.mode)
