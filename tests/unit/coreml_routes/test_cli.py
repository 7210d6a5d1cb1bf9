"""The coreml-routes command line: bad input gives one error line and exit 2, checkpoints are
read safely and strictly, and a converted model's golden outputs come from those weights."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from coreml_routes.checkpoint import load_state_arrays
from bad_input import BadInput

ROOT = Path(__file__).resolve().parents[3]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "coreml_routes.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=600)


def error_line(done):
    lines = [l for l in done.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def seeded_state(name="pann_mobilenetv1"):
    return zoo.get(name).build().state_dict()


@pytest.mark.parametrize("args, words", [
    (["convert", "--route", "v5", "--model", "logmel"], "unknown route 'v5'"),
    (["convert", "--route", "v9", "--model", "resnet"], "unknown model 'resnet'"),
    (["convert", "--route", "v9", "--model", "pann_mobilenetv1", "--samples", "2000"], "too short"),
    (["convert", "--route", "v9", "--model", "logmel", "--hooks", "nope.py"], "hooks file not found"),
])
def test_bad_requests_give_one_line_and_exit_2(args, words, tmp_path):
    done = cli(*args, "--out", str(tmp_path))
    assert done.returncode == 2
    assert words in error_line(done)
    assert list(tmp_path.iterdir()) == []


def test_missing_interpreter_is_named(tmp_path):
    env = dict(os.environ, COREML_ROUTES_PYTHON_V3=str(tmp_path / "python3.7"))
    done = cli("convert", "--route", "v3", "--model", "logmel", "--out", str(tmp_path), env=env)
    assert done.returncode == 2
    assert "route v3" in error_line(done) and "not a runnable Python" in error_line(done)


def test_route_needing_an_absent_python_version_says_which():
    from pipeline.envs import require_interpreter

    class Ancient:
        name, env, python = "v0", "v0", "0.9"
    with pytest.raises(BadInput, match=r"route v0 needs Python 0\.9"):
        require_interpreter(Ancient())


def test_panns_training_checkpoint_loads_with_weights_only(tmp_path):
    """PANNs' training script saves iteration + sampler (numpy arrays) in torch 1.x's legacy
    format; the tensors must come out, nothing else executed."""
    state = seeded_state()
    path = tmp_path / "MobileNetV1_mAP=0.389.pth"
    torch.save({"iteration": 560000, "model": state,
                "sampler": {"indexes_per_class": [np.arange(5), np.arange(3)], "pointer": 7}},
               path, _use_new_zipfile_serialization=False)
    arrays = load_state_arrays(str(path))
    assert len(arrays) == 174
    np.testing.assert_array_equal(arrays["fc1.weight"], state["fc1.weight"].numpy())


class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/coreml-routes-pwned",))


@pytest.mark.parametrize("content, words", [
    ("evil", "refused for safety"),
    ("garbage", "not a PyTorch checkpoint, or corrupt"),
    ("no-model", "holds no state dict"),
])
def test_unsafe_or_corrupt_checkpoints_are_refused(content, words, tmp_path):
    path = tmp_path / "ckpt.pth"
    if content == "evil":
        torch.save({"model": {"w": torch.zeros(1)}, "x": Payload()}, path)
    elif content == "garbage":
        path.write_bytes(b"\x80\x02this is not a checkpoint")
    else:
        torch.save({"model": [1, 2, 3]}, path)
    with pytest.raises(BadInput, match=words):
        load_state_arrays(str(path))
    assert not os.path.exists("/tmp/coreml-routes-pwned")


def test_checkpoint_with_wrong_keys_is_one_line_naming_the_file(tmp_path):
    state = seeded_state()
    del state["fc1.bias"]
    path = tmp_path / "wrong.pth"
    torch.save({"model": state}, path)
    done = cli("convert", "--route", "v9", "--model", "pann_mobilenetv1", "--checkpoint",
               str(path), "--out", str(tmp_path / "build"))
    assert done.returncode == 2
    assert str(path) in error_line(done) and "fc1.bias" in error_line(done)
    assert not (tmp_path / "build").exists()


@pytest.mark.slow
def test_convert_with_checkpoint_uses_its_weights(tmp_path):
    """Golden outputs of a checkpoint conversion are PyTorch's outputs with those weights
    (computed here independently), not the seeded ones."""
    state = seeded_state()
    state["fc_audioset.bias"] += 1.0
    path = tmp_path / "ckpt.pth"
    torch.save({"model": state}, path)
    out = tmp_path / "build"
    # One case, the example: the default cases add a full-scale tone, on which this fp16
    # program overflows (a verdict other tests check); here only the weights matter.
    np.savez(tmp_path / "example.npz", waveform=zoo.get("pann_mobilenetv1").example_inputs(16000)["waveform"])
    done = cli("convert", "--route", "v9", "--model", "pann_mobilenetv1", "--checkpoint", str(path),
               "--samples", "16000", "--inputs", str(tmp_path / "example.npz"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    model = zoo.get("pann_mobilenetv1").build()
    model.load_state_dict(state)
    with np.load(out / "pann_mobilenetv1" / "v9" / "golden.npz") as golden:
        with torch.no_grad():
            clip = model(torch.from_numpy(golden["input:waveform"]))[0].numpy()
        np.testing.assert_allclose(golden["output:clip_output"], clip, rtol=1e-6, atol=1e-7)
    # and the converted model reproduces them
    done = cli("predict", str(out / "pann_mobilenetv1" / "v9" / "model.mlpackage"), "--input",
               str(out / "pann_mobilenetv1" / "v9" / "golden.npz"))
    assert done.returncode == 0, done.stderr
    assert "clip_output" in done.stdout and "SNR" in done.stdout


def test_predict_on_a_corrupt_model_is_one_line(tmp_path):
    model = tmp_path / "model.mlmodel"
    model.write_bytes(b"\x0a\xff\xff garbage")
    inputs = tmp_path / "x.npz"
    np.savez(inputs, waveform=np.zeros((1, 32000), np.float32))
    done = cli("predict", str(model), "--input", str(inputs))
    assert done.returncode == 2
    assert str(model) in error_line(done)


def test_predict_a_wav_file_resamples_to_the_model_rate(tmp_path):
    """A 16 kHz .wav through the converted log-mel front end equals PyTorch's front end on
    the same audio at 32 kHz. v9's default is an fp16 program: its power spectrum cannot go
    below float16's smallest value 2**-24 (-72.2 dB), where PyTorch floors at -100 dB (amin
    1e-10), so PyTorch's output is compared with that floor applied, at fp16 tolerance."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly
    build = Path(os.environ.get("COREML_ROUTES_BUILD") or ROOT / "build")
    model = build / "logmel" / "v9" / "model.mlpackage"
    if not model.exists():
        pytest.skip("no logmel/v9 build in {} (tox -e v9 makes it)".format(build))
    rate = 16000
    t = np.arange(rate) / rate
    audio = (0.4 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    wav = tmp_path / "a440.wav"
    wavfile.write(wav, rate, audio)
    done = cli("predict", str(model), "--input", str(wav), "--out", str(tmp_path / "out.npz"))
    assert done.returncode == 0, done.stderr
    assert "melspec" in done.stdout and "[1, 1, 101, 64]" in done.stdout
    wave = np.zeros((1, 32000), np.float32)
    wave[0] = resample_poly(audio / 32767.0, 2, 1)[:32000]
    with torch.no_grad():
        want = zoo.get("logmel").build()(torch.from_numpy(wave)).numpy()
    with np.load(tmp_path / "out.npz") as got:
        from coreml_reference import metrics
        floored = np.maximum(want, 10 * np.log10(2.0 ** -24))
        assert metrics.within_tolerance(got["melspec"], floored, "fp16")


def built(model="logmel", route="v3"):
    build = Path(os.environ.get("COREML_ROUTES_BUILD") or ROOT / "build")
    folder = build / model / route
    if not (folder / "conversion.json").exists():
        pytest.skip("no {}/{} build in {} (tox -e {} makes it)".format(model, route, build, route))
    return folder


@pytest.mark.parametrize("make, words", [
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: tmp / "missing.npz", "input file not found"),
    (lambda tmp: (tmp / "notes.txt", (tmp / "notes.txt").write_text("1 2 3\n"))[0],
     "is not an .npz, .wav or image file"),
])
def test_predict_names_what_is_wrong_with_the_input(make, words, tmp_path):
    folder = built()
    path = make(tmp_path)
    done = cli("predict", str(folder / "model.mlmodel"), "--input", str(path))
    assert done.returncode == 2
    assert words in error_line(done) and str(path) in error_line(done)


def test_predict_out_creates_its_folder_or_says_why_not(tmp_path):
    folder = built()
    out = tmp_path / "new" / "dir" / "out.npz"
    done = cli("predict", str(folder / "model.mlmodel"), "--input", str(folder / "golden.npz"),
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    with np.load(out) as saved, np.load(folder / "golden.npz") as golden:
        assert saved["melspec"].shape == golden["output:melspec"].shape
    (tmp_path / "file").write_text("")
    done = cli("predict", str(folder / "model.mlmodel"), "--input", str(folder / "golden.npz"),
               "--out", str(tmp_path / "file" / "out.npz"))
    assert done.returncode == 2
    assert "a file is in the way" in error_line(done) and "melspec" not in done.stdout


def test_predict_converts_an_int64_input_as_mlmodel_predict_does_and_says_so_with_v(tmp_path):
    folder = built()
    with np.load(folder / "golden.npz") as golden:
        wave = np.round(golden["input:waveform"] * 1000)
    np.savez(tmp_path / "int.npz", waveform=wave.astype(np.int64))
    np.savez(tmp_path / "float.npz", waveform=wave.astype(np.float32))
    outputs = {}
    for name, flags in (("int", ["-v"]), ("float", []), ("int_quiet", [])):
        source = name.split("_")[0]
        done = cli("predict", str(folder / "model.mlmodel"), "--input",
                   str(tmp_path / (source + ".npz")), "--out", str(tmp_path / (name + "-out.npz")),
                   *flags)
        assert done.returncode == 0, done.stderr
        outputs[name] = done
        with np.load(tmp_path / (name + "-out.npz")) as saved:
            outputs[name + ":melspec"] = saved["melspec"]
    assert "'waveform': int64 array converted to the model's float32" in outputs["int"].stderr
    assert outputs["int_quiet"].stderr == ""   # nothing said without -v, no warnings either
    # Two processes: the evaluator's BLAS thread count follows the machine's load at the time,
    # which can move the last bit (coreml_reference.blas); a wrong conversion moves far more.
    np.testing.assert_allclose(outputs["int:melspec"], outputs["float:melspec"], rtol=1e-6, atol=0)


def test_a_text_file_as_checkpoint_says_what_is_expected(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("fc1.weight 0.1 0.2\n")
    done = cli("convert", "--route", "v9", "--model", "logmel", "--checkpoint", str(path),
               "--out", str(tmp_path / "build"))
    assert done.returncode == 2
    line = error_line(done)
    assert "is not a PyTorch checkpoint (a text file" in line and "expected a file written by torch.save" in line
    assert not (tmp_path / "build").exists()


def test_a_hooks_file_that_raises_names_its_line_and_writes_nothing(tmp_path):
    hooks = tmp_path / "hooks.py"
    hooks.write_text("# my hooks\nHOOKS = {'v9': {'pad': my_pad}}\n")
    env = dict(os.environ, COREML_ROUTES_PYTHON_V9=sys.executable)
    done = cli("convert", "--route", "v9", "--model", "logmel", "--hooks", str(hooks),
               "--out", str(tmp_path / "build"), env=env)
    assert done.returncode == 2, done.stderr
    assert error_line(done) == "error: hooks file {} line 2: NameError: name 'my_pad' is not " \
                               "defined".format(hooks)
    assert not (tmp_path / "build").exists()


def test_version_lists_each_route_toolchain_without_an_env():
    import backends
    done = cli("--version")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("coreml-routes ")
    for route, backend in backends.all_routes().items():
        line = next(l for l in lines if l.split()[:1] == [route])
        assert "Python " + backend.python in line and "torch==" in line
        converter = "coreai-torch==" if backend.runtime == "Core AI" else "coremltools=="
        assert converter in line, line
    assert "coremltools==3.3" in next(l for l in lines if l.split()[:1] == ["v3"])


@pytest.mark.parametrize("verbose", [False, True])
def test_expected_linux_warnings_show_only_with_v(verbose):
    code = ("from coreml_routes.quiet import hide_expected_warnings\n"
            "{}\nimport coremltools\n").format("" if verbose else "hide_expected_warnings()")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    shown = "Failed to load _MLModelProxy" in done.stderr
    if sys.platform == "darwin":
        pytest.skip("macOS loads the Core ML runtime: no such warning to hide")
    assert shown is verbose, done.stderr


def test_predict_an_image_classifier_on_a_png(tmp_path):
    """A PNG feeds a model with one image input; the classifier's label and top
    probabilities print, and --out keeps them. Expected: PyTorch on the PNG's pixels,
    scaled by hand."""
    import coremltools as ct
    from PIL import Image
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Softmax(dim=-1)).eval()
    labels = ["cat", "dog", "owl", "fox"]
    model = ct.convert(torch.jit.trace(net, torch.rand(1, 3, 6, 8)),
                       inputs=[ct.ImageType(name="photo", shape=(1, 3, 6, 8), scale=1 / 255)],
                       classifier_config=ct.ClassifierConfig(labels), convert_to="mlprogram",
                       compute_precision=ct.precision.FLOAT32, skip_model_load=True)
    path = tmp_path / "classifier.mlpackage"
    model.save(str(path))
    rgb = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    with torch.no_grad():
        probs = net(torch.from_numpy(rgb.transpose(2, 0, 1)[None] / 255.0).float())[0].numpy()

    done = cli("predict", str(path), "--input", str(tmp_path / "photo.png"),
               "--out", str(tmp_path / "out.npz"))

    assert done.returncode == 0, done.stderr
    best = labels[int(np.argmax(probs))]
    assert "'{}'".format(best) in done.stdout and "top 3: {} ".format(best) in done.stdout
    with np.load(tmp_path / "out.npz") as got:
        label_name = model.get_spec().description.predictedProbabilitiesName
        assert list(got[label_name + ":labels"]) == labels
        np.testing.assert_allclose(got[label_name], probs, rtol=1e-5)
    not_an_image = cli("predict", str(path), "--input", str(tmp_path / "out.npz"))
    assert not_an_image.returncode == 2 and "photo" in error_line(not_an_image)
