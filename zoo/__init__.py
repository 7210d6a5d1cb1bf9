"""The model zoo: name -> builder, example input, input/output names.

Like torchvision's builders: each entry builds an ``nn.Module`` in eval mode with
deterministic seeded weights; official weights arrive as data (a dict of numpy arrays,
see ``load_weights``) and are checked strictly. Runs on torch 1.4 / Python 3.7.
"""
from __future__ import division

from collections import OrderedDict

from bad_input import BadInput

# numpy and torch are imported where used: the CLI lists the zoo in --help, which must be fast.


class ZooError(BadInput):
    """Bad input to the zoo (unknown model, weights that do not fit)."""


class Entry(object):
    def __init__(self, name, build, inputs, outputs, summary, sample_rate=32000, min_samples=1024,
                 labels=None):
        self.name = name
        self.build = build            # build() -> nn.Module with seeded weights
        self.inputs = inputs          # input_name -> shape builder(samples)
        self.outputs = outputs        # output names, in forward order
        self.summary = summary
        self.sample_rate = sample_rate
        self.min_samples = min_samples  # shortest input the model accepts
        self.labels = labels            # class names of its scores (zoo.labels.SETS), or None

    def check_samples(self, samples):
        if samples < self.min_samples:
            raise ZooError("--samples {} is too short for {}: it needs at least {}".format(
                samples, self.name, self.min_samples))

    def example_inputs(self, samples=32000, seed=0):
        """Deterministic example: a chirp plus noise, the same on every torch version."""
        import numpy as np
        rng = np.random.RandomState(seed)
        arrays = OrderedDict()
        for name, shape_of in self.inputs.items():
            shape = shape_of(samples)
            if name == "waveform":
                t = np.arange(shape[-1]) / float(self.sample_rate)
                chirp = 0.3 * np.sin(2 * np.pi * (200.0 + 2000.0 * t) * t)
                arrays[name] = (chirp + 0.05 * rng.randn(*shape)).astype(np.float32)
            else:
                arrays[name] = rng.randn(*shape).astype(np.float32)
        return arrays

    def example_cases(self, samples=32000):
        """The inputs a verdict is judged on, label -> inputs. A waveform model gets three:
        the example (a chirp plus noise), a near-silent clip (pink noise peaking at -60 dBFS,
        where a log's epsilon shows) and the full-scale 1 kHz tone (fp16's worst case)."""
        cases = OrderedDict([("example", self.example_inputs(samples))])
        if list(self.inputs) == ["waveform"]:
            shape = self.inputs["waveform"](samples)
            cases["quiet"] = {"waveform": pink_noise(shape, peak_dbfs=QUIET_DBFS)}
            cases["tone"] = {"waveform": full_scale_tone(shape, self.sample_rate)}
        return cases


QUIET_DBFS = -60.0
# A full-scale tone on an exact STFT bin is the loudest pure tone a [-1, 1] waveform holds:
# its |STFT|^2 peak is (N/4)^2 = 65536 for the periodic Hann window, just above fp16's
# largest finite value 65504.
TONE_HZ = 1000.0


def full_scale_tone(shape, sample_rate, hz=TONE_HZ):
    import numpy as np
    t = np.arange(shape[-1]) / float(sample_rate)
    return np.sin(2 * np.pi * hz * t).astype(np.float32).reshape(shape)


def pink_noise(shape, peak_dbfs, seed=1):
    """Seeded 1/f noise scaled so that its peak sits at ``peak_dbfs`` (0 dBFS = 1.0)."""
    import numpy as np
    n = shape[-1]
    spectrum = np.fft.rfft(np.random.RandomState(seed).randn(n))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    noise *= 10 ** (peak_dbfs / 20.0) / np.max(np.abs(noise))
    return noise.astype(np.float32).reshape(shape)


def _waveform(samples):
    return (1, samples)


def _build_pann(backbone_name, **overrides):
    def build():
        from zoo import pann
        backbone = {"mobilenetv1": pann.mobilenet_v1_features,
                    "mobilenetv2": pann.mobilenet_v2_features}[backbone_name]
        params = dict(pann.PANN_DEFAULTS)
        params.update(overrides)
        return finish(pann.PannTagger(backbone, **params))
    return build


def _build_logmel():
    from zoo.frontend import LogMel
    from zoo.pann import PANN_DEFAULTS
    keys = ("sample_rate", "window_size", "hop_size", "mel_bins", "fmin", "fmax")
    return finish(LogMel(**dict((k, PANN_DEFAULTS[k]) for k in keys)))


def _build_upsample():
    from zoo.pann import Upsample
    return finish(Upsample(mode="panns"))


_PANN_OUTPUTS = ["clip_output", "frame_output", "melspec"]
# The backbones halve time five times: they need 32 STFT frames (hop 320) at least.
_PANN_MIN_SAMPLES = 31 * 320 + 1

MODELS = OrderedDict((e.name, e) for e in [
    Entry("pann_mobilenetv1", _build_pann("mobilenetv1"), OrderedDict(waveform=_waveform),
          _PANN_OUTPUTS, "PANNs MobileNetV1 audio tagger (AudioSet, 527 classes)",
          min_samples=_PANN_MIN_SAMPLES, labels="audioset"),
    Entry("pann_mobilenetv2", _build_pann("mobilenetv2"), OrderedDict(waveform=_waveform),
          _PANN_OUTPUTS, "PANNs MobileNetV2 audio tagger (AudioSet, 527 classes)",
          min_samples=_PANN_MIN_SAMPLES, labels="audioset"),
    Entry("logmel", _build_logmel, OrderedDict(waveform=_waveform), ["melspec"],
          "PANNs log-mel front end alone (STFT as conv1d, mel matrix, 10*log10)"),
    Entry("pann_upsample", _build_upsample,
          OrderedDict(segments=lambda samples: (1, samples // 320 // 32, 527)), ["frame_output"],
          "PANNs' own frame upsampling (x.shape arithmetic): which routes reject it"),
])


def get(name):
    try:
        return MODELS[name]
    except KeyError:
        raise ZooError("unknown model {!r}; known models: {}".format(name, ", ".join(MODELS)))


def finish(module, seed=0):
    """Seed every learned tensor deterministically (numpy, so identical on every torch) and
    switch to eval mode. DFT and mel matrices are fixed by construction and kept."""
    import numpy as np
    import torch
    rng = np.random.RandomState(seed)
    fixed = ("spectrogram_extractor.", "logmel_extractor.")
    state = module.state_dict()
    for key in sorted(state):
        tensor = state[key]
        if key.startswith(fixed) or not tensor.is_floating_point():
            continue
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "running_mean":
            value = rng.normal(0.0, 0.1, tensor.shape)
        elif leaf == "running_var":
            value = rng.uniform(0.5, 1.5, tensor.shape)
        elif leaf == "bias":
            value = rng.normal(0.0, 0.05, tensor.shape)
        elif tensor.dim() == 1:        # batch-norm scale
            value = rng.uniform(0.8, 1.2, tensor.shape)
        else:                          # conv / linear: He-normal keeps activations O(1)
            fan_in = int(np.prod(tensor.shape[1:]))
            gain = 0.5 if key.startswith("fc_audioset") else 2.0   # logits, not saturated
            value = rng.normal(0.0, np.sqrt(gain / fan_in), tensor.shape)
        tensor.copy_(torch.from_numpy(value.astype(np.float32)))
    if "bn0.running_mean" in state:
        # The example's log-mel sits around -15 dB with ~12 dB spread: centre it, as training would.
        state["bn0.running_mean"].fill_(-15.0)
        state["bn0.running_var"].fill_(150.0)
    return module.eval()


def load_weights(module, arrays, where="checkpoint"):
    """Load a state dict given as numpy arrays, strictly: same keys, same shapes."""
    import numpy as np
    import torch
    state = module.state_dict()
    missing = sorted(set(state) - set(arrays))
    extra = sorted(set(arrays) - set(state))
    if missing or extra:
        parts = []
        if missing:
            parts.append("{} missing key(s) e.g. {}".format(len(missing), missing[0]))
        if extra:
            parts.append("{} unexpected key(s) e.g. {}".format(len(extra), extra[0]))
        raise ZooError("{} does not fit {}: {}".format(where, type(module).__name__,
                                                      "; ".join(parts)))
    for key, tensor in state.items():
        value = np.asarray(arrays[key])
        if tuple(value.shape) != tuple(tensor.shape):
            raise ZooError("{}: {} has shape {}, the model expects {}".format(
                where, key, tuple(value.shape), tuple(tensor.shape)))
    module.load_state_dict(OrderedDict(
        (k, torch.from_numpy(np.array(arrays[k])))   # a copy: the caller's arrays stay theirs
        for k in state), strict=True)
    return module.eval()
