"""Small models with planted faults, for the tests of ``coreml-routes diagnose`` and ``ops``.

Tests load them as a user's own model file (``--model tests/models/planted.py:pool1d``),
with their seeded example input as ``--inputs`` (``cli_args``). Runs on torch 1.4 /
Python 3.7 (route tests in the v3 env use them too).
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


def _finished(module):
    from zoo import finish       # the zoo's deterministic seeding, the same on every torch
    return finish(module)


def pool1d():
    """conv1d, max+avg pool1d with padding, linear."""
    return _finished(TinyTagger())


def fp16_overflow():
    """squares values near 1e3 (fp16 overflow)."""
    return _finished(Overflow())


def nested_upsample():
    """PANNs upsampling inside head.1 (v9 rejects its int())."""
    return _finished(NestedUpsample())


# name -> (input name, input shape, output name): what each model takes and returns.
MODELS = OrderedDict([
    ("pool1d", ("x", (1, 8, 12), "scores")),
    ("fp16_overflow", ("x", (1, 4, 16), "y")),
    ("nested_upsample", ("x", (1, 6, 16), "frames")),
])
NAMES = dict(("test_" + name, name) for name in MODELS)   # the folder names the tests expect


def example_inputs(name):
    """The seeded example input (normal(0, 1), seed 0), one case labelled "example"."""
    import numpy as np
    input_name, shape, _ = MODELS[name]
    return OrderedDict([(input_name, np.random.RandomState(0).randn(*shape).astype(np.float32))])


def write_inputs(name, folder):
    """The example input as the host hands it to a worker (``backends.builds``); its path."""
    import os
    from backends.builds import Case, write_cases_file
    path = os.path.join(str(folder), "{}-inputs.npz".format(name))
    write_cases_file(path, [Case("example", example_inputs(name), OrderedDict())])
    return path


def cli_args(test_name, folder):
    """The coreml-routes flags that take model ``test_name`` (e.g. test_pool1d) from this file,
    fed its example input, in build folder ``<out>/test_name/``."""
    import os
    import numpy as np
    name = NAMES[test_name]
    path = os.path.join(str(folder), "example.npz")
    np.savez(path, **example_inputs(name))
    return ["--model", "{}:{}".format(os.path.abspath(__file__), name), "--name", test_name,
            "--inputs", path, "--output", MODELS[name][2]]
