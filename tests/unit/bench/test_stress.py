"""The fp16 stress input really is beyond fp16 in PyTorch's own arithmetic, and is only used
where the host can reproduce the route's weights."""
import numpy as np
import torch

import zoo
from bench.accuracy import full_scale_case

FP16_MAX = float(np.finfo(np.float16).max)


def test_full_scale_tone_overflows_fp16_in_the_stft_power():
    inputs = zoo.get("logmel").example_inputs(32000)
    case = full_scale_case("logmel", {"weights": "seeded"}, inputs)
    tone = case["inputs"]["waveform"]
    assert tone.shape == (1, 32000) and np.abs(tone).max() <= 1.0
    frontend = zoo.get("logmel").build()
    with torch.no_grad():
        power = frontend.spectrogram_extractor(torch.from_numpy(tone))
    assert float(power.max()) > FP16_MAX          # (1024 / 4)^2 = 65536 > 65504
    np.testing.assert_allclose(case["golden"]["melspec"], frontend(torch.from_numpy(tone)).numpy())


def test_stress_case_refuses_checkpoint_weights():
    inputs = zoo.get("logmel").example_inputs(32000)
    assert "not_measured" in full_scale_case("logmel", {"weights": "checkpoint"}, inputs)
