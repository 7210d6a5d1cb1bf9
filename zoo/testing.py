"""Small models with planted faults, for the tests of ``coreml-routes diagnose``.

They join the zoo only when ``COREML_ROUTES_TEST_MODELS=1`` (see ``zoo.MODELS``), so they
never show in listings or batch runs. Each takes a fixed-size input (``samples`` is
ignored). Runs on torch 1.4 / Python 3.7.
"""
from __future__ import division

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


class PoolPair(nn.Module):
    """PANNs' time smoothing: max_pool1d + avg_pool1d, both padded by one frame."""

    def forward(self, x):
        return F.max_pool1d(x, 3, 1, 1) + F.avg_pool1d(x, 3, 1, 1)


class TinyTagger(nn.Module):
    """conv stem -> PANNs' pool pair -> linear: the avg_pool1d padding in a few layers."""

    def __init__(self):
        super(TinyTagger, self).__init__()
        self.stem = nn.Sequential(nn.Conv1d(8, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU())
        self.pool = PoolPair()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return torch.sigmoid(self.fc(self.pool(self.stem(x)).transpose(1, 2)))


class Square(nn.Module):
    def forward(self, x):
        return x * x


class Overflow(nn.Module):
    """Fine in fp32, overflows fp16 (max 65504): |scale(x)| reaches ~1e3, its square ~1e6."""

    def __init__(self):
        super(Overflow, self).__init__()
        self.fc = nn.Linear(16, 16)
        self.square = Square()

    def forward(self, x):
        y = torch.relu(self.fc(x)) * 300.0
        return torch.tanh(self.square(y) * 1e-6)


class NestedUpsample(nn.Module):
    """A linear layer, then PANNs' own upsampling (x.shape arithmetic) two levels down."""

    def __init__(self):
        super(NestedUpsample, self).__init__()
        from zoo.pann import Upsample
        self.fc = nn.Linear(16, 16)
        self.head = nn.Sequential(nn.ReLU(), Upsample(mode="panns"))

    def forward(self, x):
        return self.head(self.fc(x))


def entries(Entry, finish):
    """The test models as zoo entries (built by zoo/__init__.py, to avoid an import cycle)."""
    fixed = lambda shape: (lambda samples: shape)
    return [
        Entry("test_pool1d", lambda: finish(TinyTagger()), OrderedDict(x=fixed((1, 8, 12))),
              ["scores"], "test: conv1d, max+avg pool1d with padding, linear"),
        Entry("test_fp16_overflow", lambda: finish(Overflow()), OrderedDict(x=fixed((1, 4, 16))),
              ["y"], "test: squares values near 1e3 (fp16 overflow)"),
        Entry("test_nested_upsample", lambda: finish(NestedUpsample()),
              OrderedDict(x=fixed((1, 6, 16))), ["frames"],
              "test: PANNs upsampling inside head.1 (v9 rejects its int())"),
    ]
