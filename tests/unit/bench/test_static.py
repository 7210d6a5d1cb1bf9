import numpy as np
import pytest

from bench import static


def test_macs_from_hooks_and_matmul():
    torch = pytest.importorskip("torch")
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, kernel_size=3, padding=1, groups=2)
            self.fc = nn.Linear(8, 5)
            self.register_buffer("mel", torch.ones(6, 8))

        def forward(self, x):
            y = self.conv(x)                      # (1, 4, 6, 6)
            z = torch.matmul(y.mean(1), self.mel)  # (1, 6, 6) @ (6, 8) -> (1, 6, 8)
            return self.fc(z)                     # (1, 6, 5)

    x = torch.zeros(1, 2, 6, 6)
    conv = 4 * 6 * 6 * (2 // 2) * 3 * 3   # outputs x (in/groups) x kernel
    matmul = 1 * 6 * 8 * 6                # outputs x inner dimension
    linear = 6 * 5 * 8                    # outputs x in_features
    facts = static.pytorch_facts(Tiny(), (x,))
    assert facts["macs"]["count"] == conv + matmul + linear
    assert "PyTorch-side" in facts["macs"]["source"]
    assert facts["parameters"]["count"] == (4 * 1 * 3 * 3 + 4) + (8 * 5 + 5)
    assert facts["parameters_and_buffers"]["count"] == facts["parameters"]["count"] + 48


def test_spec_parameters_of_a_neuralnetwork(tmp_path):
    ct = pytest.importorskip("coremltools")
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    builder = NeuralNetworkBuilder([("x", datatypes.Array(4))], [("y", datatypes.Array(3))])
    builder.add_inner_product("fc", W=np.ones((3, 4), np.float32), b=np.zeros(3, np.float32),
                              input_channels=4, output_channels=3, has_bias=True,
                              input_name="x", output_name="y")
    path = str(tmp_path / "m.mlmodel")
    ct.utils.save_spec(builder.spec, path)
    facts = static.spec_facts(path)
    assert facts["parameters"]["count"] == 3 * 4 + 3
    assert "NeuralNetwork" in facts["parameters"]["source"]
    assert facts["weight_precision"] == "fp32"
