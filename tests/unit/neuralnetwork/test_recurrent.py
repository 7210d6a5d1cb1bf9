"""LSTM in both evaluators (NeuralNetwork uniDirectionalLSTM, MIL lstm), against PyTorch's
own LSTM: the model is converted here by coremltools 9 both ways."""
import warnings

import numpy as np
import pytest
import torch

import coreml_reference
from coreml_reference import metrics


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(6, 5, batch_first=True)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return out, h, c


@pytest.mark.parametrize("convert_to", ["neuralnetwork", "mlprogram"])
def test_lstm_matches_pytorch(convert_to):
    import coremltools as ct
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(1, 7, 6)
    with torch.no_grad():
        expected = [t.numpy() for t in net(x)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ct.convert(torch.jit.trace(net, x), inputs=[ct.TensorType(name="x", shape=x.shape)],
                           outputs=[ct.TensorType(name=n) for n in ("out", "h", "c")],
                           convert_to=convert_to, compute_precision=ct.precision.FLOAT32
                           if convert_to == "mlprogram" else None)
    kinds = {layer.WhichOneof("layer") for layer in model.get_spec().neuralNetwork.layers} \
        if convert_to == "neuralnetwork" else None
    assert kinds is None or "uniDirectionalLSTM" in kinds
    got = coreml_reference.predict(model.get_spec() if convert_to == "neuralnetwork" else model,
                                   {"x": x.numpy()})
    for name, want in zip(("out", "h", "c"), expected):
        value = np.asarray(got[name]).reshape(want.shape)
        assert metrics.snr_db(value, want) > 100, name
        np.testing.assert_allclose(value, want, atol=1e-5)
