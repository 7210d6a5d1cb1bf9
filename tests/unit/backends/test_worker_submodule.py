"""diagnose's sub-module conversions: each sub-module is fed what it really receives (dtype
included) and is named by the user's own module path."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn

from bad_input import BadInput
from backends.sources import FlatOutputs, user_module
from backends.worker import submodule_job


class Text(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 8)
        self.fc = nn.Linear(8, 3)

    def forward(self, tokens):
        return self.fc(self.emb(tokens)), tokens.shape[1] * torch.ones(1)


def test_token_ids_reach_the_embedding_as_integers_by_the_users_path():
    model = FlatOutputs(Text()).eval()
    tokens = np.arange(12, dtype=np.int64).reshape(1, 12)
    module, inputs, outputs = submodule_job(model, OrderedDict(tokens=tokens), "emb")
    assert isinstance(module, nn.Embedding)
    assert list(inputs) == ["input_0"] and inputs["input_0"].dtype == np.int64
    assert np.array_equal(inputs["input_0"], tokens) and outputs == ["output_0"]
    _, fc_inputs, _ = submodule_job(model, OrderedDict(tokens=tokens), "fc")
    assert fc_inputs["input_0"].dtype == np.float32 and fc_inputs["input_0"].shape == (1, 12, 8)


def test_the_wrapper_path_is_not_the_users():
    model = FlatOutputs(Text()).eval()
    assert user_module(model) is model.inner
    with pytest.raises(BadInput, match="no sub-module 'inner.emb'"):
        submodule_job(model, OrderedDict(tokens=np.zeros((1, 2), np.int64)), "inner.emb")
