"""Bring your own model: factories, TorchScript and ONNX files through every route, as a
user runs them (the CLI, each route in its pinned env). The facts pinned here are the
toolchains' own: a change either way is noticed. Golden outputs come from PyTorch (ONNX:
onnxruntime), checked here against a fresh run where it matters."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

MODELS = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.fc(out[:, -1])


    def lstm():
        return Tagger()


    def transformer():
        # batch_first arrived in torch 1.9: the old routes cannot build this.
        return nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)


    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(1000, 8)
            self.fc = nn.Linear(8, 3)

        def forward(self, ids):
            pooled = self.emb(ids).mean(dim=1)
            return {"logits": self.fc(pooled), "pooled": pooled}


    def tokens():
        return Tokens()
''')

SDPA = textwrap.dedent('''
    import torch.nn as nn
    from torch.nn.functional import scaled_dot_product_attention   # torch >= 2.0


    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(16, 48)

        def forward(self, x):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            return scaled_dot_product_attention(q, k, v)


    def build():
        return Attend()
''')


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "coreml_routes.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=1200)


def compare(tmp_path, *args):
    done = cli("compare", *args, "--out", str(tmp_path / "build"))
    return done, done.stdout + done.stderr


def doc(tmp_path, name):
    with open(tmp_path / "build" / name / "compare.json") as f:
        return json.load(f)


@pytest.fixture
def models(tmp_path):
    (tmp_path / "user_models.py").write_text(MODELS)
    (tmp_path / "sdpa_model.py").write_text(SDPA)
    return tmp_path


def test_small_cnn_every_route_and_a_recommendation(tmp_path):
    example = ROOT / "examples" / "keyword_spotter.py"
    done, out = compare(tmp_path, "--model", "{}:build".format(example), "--input", "mel:1x1x40x98")
    assert done.returncode == 0, out
    result = doc(tmp_path, "keyword_spotter-build")
    assert set(result) >= {"recommended", "reasons", "routes"}
    assert result["recommended"] == "v9" and "recommended: v9" in done.stdout
    routes = result["routes"]
    for route in ("v3", "v4", "v9", "v9-export"):
        assert set(routes[route]) >= {"status", "stage", "reason", "verified", "fp32", "fp16",
                                      "size_bytes", "seconds"}
    # torch 1.4 exports avg_pool2d(x, 2) with empty strides, which onnx's checker refuses;
    # coremltools 9's torch.export path wants max_pool2d's stride spelled out.
    assert routes["v3"]["status"] == "failed" and routes["v3"]["stage"] == "export"
    assert "AveragePool" in routes["v3"]["reason"]
    assert routes["v9-export"]["stage"] == "convert" and "max_pool2d" in routes["v9-export"]["reason"]
    for route in ("v4", "v9"):
        assert routes[route]["verified"]["status"] == "matches"
        assert routes[route]["fp16"]["within_tolerance"]
        assert (tmp_path / "build" / "keyword_spotter-build" / route / "conversion.json").exists()
    assert routes["v4"]["why_not"].startswith("older toolchain")
    # The 2026 routes, side by side: ExecuTorch's partitioner hands the same max_pool2d to
    # coremltools' torch.export frontend; Core AI converts it and its interpreter matches.
    assert set(routes) == {"v3", "v4", "v9", "v9-export", "et", "coreai"}
    table = [line.split()[0] for line in done.stdout.splitlines()
             if line.split()[:1] and line.split()[0] in routes]
    assert table[:6] == ["v3", "v4", "v9", "v9-export", "et", "coreai"]   # the routes' order
    assert routes["et"]["runtime"] == "ExecuTorch + Core ML" and routes["et"]["stage"] == "convert"
    assert "max_pool2d" in routes["et"]["reason"]
    assert routes["coreai"]["runtime"] == "Core AI"
    assert routes["coreai"]["verified"]["status"] == "matches"
    assert "Core AI runtime" in routes["coreai"]["why_not"] or "fp16 not evaluated" in routes["coreai"]["why_not"]
    # Every route got the weights the host's torch built (seeded), so PyTorch reproduces the
    # golden outputs here; and the v4 env's older torch agrees with this one.
    sys.path.insert(0, str(example.parent))
    try:
        from keyword_spotter import build
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    module = build().eval()
    for route in ("v4", "v9"):
        with np.load(tmp_path / "build" / "keyword_spotter-build" / route / "golden.npz") as g:
            with torch.no_grad():
                expected = module(torch.from_numpy(g["input:mel"])).numpy()
            np.testing.assert_allclose(g["output:output_0"], expected, rtol=1e-4, atol=1e-5)
    drift = routes["v4"]["torch_drift"]
    assert drift["host_torch"].startswith("2.") and drift["max_abs_error"] < 1e-4
    md = (tmp_path / "build" / "keyword_spotter-build" / "compare.md").read_text()
    table, stages = md.split("seconds per stage")
    assert table.count("| v") == 4
    assert [line.split("|")[1].strip() for line in stages.splitlines() if line.startswith("| ")][1:] == \
        ["v3", "v4", "v9", "v9-export", "et", "coreai"]      # every route's seconds, failed ones too


def test_transformer_only_the_export_route(models):
    done, out = compare(models, "--model", "{}:transformer".format(models / "user_models.py"),
                        "--input", "src:1x6x16")
    assert done.returncode == 0, out
    routes = doc(models, "user_models-transformer")["routes"]
    for old in ("v3", "v4"):
        assert routes[old]["stage"] == "build" and "batch_first" in routes[old]["reason"]
    # In eval mode the layer takes torch's fused fast path, which ct 9's TorchScript frontend lacks.
    assert routes["v9"]["stage"] == "convert" and "_transformer_encoder_layer_fwd" in routes["v9"]["reason"]
    assert routes["v9-export"]["verified"]["status"] == "matches"
    assert doc(models, "user_models-transformer")["recommended"] == "v9-export"


def test_torch2_only_api_is_a_build_failure_of_the_old_routes(models):
    done, out = compare(models, "--model", "{}:build".format(models / "sdpa_model.py"),
                        "--input", "x:1x5x16", "--routes", "v3,v4,v9")
    routes = doc(models, "sdpa_model-build")["routes"]
    for old in ("v3", "v4"):
        assert routes[old]["status"] == "failed" and routes[old]["stage"] == "build", out
        assert "scaled_dot_product_attention" in routes[old]["reason"]
    assert routes["v9"]["status"] == "ok"


def test_int64_tokens_and_dict_outputs(models):
    done, out = compare(models, "--model", "{}:tokens".format(models / "user_models.py"),
                        "--input", "ids:1x12:int64", "--int-range", "0,1000",
                        "--output", "logits", "--output", "pooled", "--routes", "v3,v9")
    assert done.returncode == 0, out
    result = doc(models, "user_models-tokens")
    for route in ("v3", "v9"):
        assert result["routes"][route]["verified"]["status"] == "matches", out
        folder = models / "build" / "user_models-tokens" / route
        with np.load(folder / "golden.npz") as g:
            assert g["input:ids"].dtype == np.int64 and g["input:ids"].max() < 1000
            assert sorted(g.files) == ["input:ids", "output:logits", "output:pooled"]
        record = json.loads((folder / "conversion.json").read_text())
        assert [o["name"] for o in record["outputs"]] == ["logits", "pooled"]


def test_lstm_converts_on_the_torchscript_routes(models):
    done, out = compare(models, "--model", "{}:lstm".format(models / "user_models.py"),
                        "--input", "x:1x10x8", "--routes", "v4,v9-export")
    routes = doc(models, "user_models-lstm")["routes"]
    assert routes["v4"]["verified"]["status"] == "matches", out     # uniDirectionalLSTM
    assert routes["v9-export"]["stage"] == "convert" and "lstm" in routes["v9-export"]["reason"]


def test_torchscript_archive_saved_by_the_host(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3), torch.nn.ReLU()).eval()
    torch.jit.save(torch.jit.trace(module, torch.randn(1, 4, 20)), str(tmp_path / "net.pt"))
    done, out = compare(tmp_path, "--model", str(tmp_path / "net.pt"), "--input", "x:1x4x20")
    assert done.returncode == 0, out
    routes = doc(tmp_path, "net")["routes"]
    assert routes["v9"]["verified"]["status"] == "matches"
    assert routes["v9-export"]["status"] == "not applicable"
    # torch 1.4 cannot read the archive format torch 2 writes; torch 1.7 reads this one.
    assert routes["v3"]["status"] == "failed" and routes["v3"]["stage"] == "load", out
    assert "Attempted to read a PyTorch file with version 3" in routes["v3"]["reason"]
    assert routes["v4"]["verified"]["status"] == "matches"
    with np.load(tmp_path / "build" / "net" / "v9" / "golden.npz") as g, torch.no_grad():
        expected = module(torch.from_numpy(g["input:x"])).numpy()
        np.testing.assert_allclose(g["output:output_0"], expected, rtol=1e-5, atol=1e-6)


def _onnx_file(path, opset, batch=None):
    """A small CNN as an ONNX file; ``batch``: a symbolic batch dimension of that name, as
    tf2onnx and torch's dynamic_axes write it."""
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 5)).eval()
    axes = {"image": {0: batch}, "scores": {0: batch}} if batch else None
    torch.onnx.export(module, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False,
                      opset_version=opset, input_names=["image"], output_names=["scores"],
                      dynamic_axes=axes)
    return module


def test_onnx_file_through_v3(tmp_path):
    # A symbolic batch, given --inputs of batch 1: the shape reaches the converter, and the
    # converted model computes what PyTorch does on that input (not only what onnxruntime does).
    module = _onnx_file(tmp_path / "net.onnx", 9, batch="N")
    image = np.random.RandomState(0).randn(1, 3, 8, 8).astype(np.float32)
    np.savez(tmp_path / "in.npz", image=image)
    done, out = compare(tmp_path, "--model", str(tmp_path / "net.onnx"), "--inputs",
                        str(tmp_path / "in.npz"))
    assert done.returncode == 0, out
    result = doc(tmp_path, "net")
    assert result["recommended"] == "v3"
    for route in ("v4", "v9", "v9-export"):
        assert result["routes"][route]["status"] == "not applicable"
        assert result["routes"][route]["reason"] == "ONNX input needs route v3"
    assert result["routes"]["v3"]["verified"]["status"] == "matches"
    # The golden outputs are onnxruntime's, and the recommendation says so.
    assert result["reasons"][0].startswith("converts and matches onnxruntime (worst SNR")
    folder = tmp_path / "build" / "net" / "v3"
    with np.load(folder / "golden.npz") as g, torch.no_grad():
        expected = module(torch.from_numpy(g["input:image"])).numpy()
        np.testing.assert_allclose(g["output:scores"], expected, rtol=1e-4, atol=1e-5)
    from coreml_reference import predict
    got = predict(str(folder / "model.mlmodel"), {"image": image})["scores"]
    with torch.no_grad():
        np.testing.assert_allclose(got, module(torch.from_numpy(image)).numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_opset_too_new_for_onnx_1_6_is_a_recorded_failure(tmp_path):
    _onnx_file(tmp_path / "new.onnx", 18)
    done, out = compare(tmp_path, "--model", str(tmp_path / "new.onnx"), "--routes", "v3")
    assert done.returncode == 1, out
    v3 = doc(tmp_path, "new")["routes"]["v3"]
    assert v3["status"] == "failed" and v3["stage"] == "load" and v3["reason"], out


def test_inputs_npz_become_the_golden_inputs(tmp_path):
    arrays = {"mel": np.linspace(-1, 1, 40 * 98, dtype=np.float32).reshape(1, 1, 40, 98)}
    np.savez(tmp_path / "in.npz", **arrays)
    done = cli("convert", "--route", "v9", "--model",
               "{}:build".format(ROOT / "examples" / "keyword_spotter.py"),
               "--inputs", str(tmp_path / "in.npz"), "--name", "kws", "--out", str(tmp_path / "b"))
    assert done.returncode == 0, done.stderr
    assert "verified: matches" in done.stdout
    with np.load(tmp_path / "b" / "kws" / "v9" / "golden.npz") as g:
        np.testing.assert_array_equal(g["input:mel"], arrays["mel"])


def test_requirements_that_cannot_install_fail_the_route_at_stage_env(tmp_path):
    (tmp_path / "m.py").write_text("import torch\ndef build():\n    return torch.nn.ReLU()\n")
    (tmp_path / "not_a_project").mkdir()
    (tmp_path / "reqs.txt").write_text("./not_a_project\n")
    done = cli("convert", "--route", "v9", "--model", "m.py:build", "--input", "x:1x4",
               "--requirements", "reqs.txt", "--out", "b", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    record = json.loads((tmp_path / "b" / "m-build" / "v9" / "conversion.json").read_text())
    assert record["status"] == "failed" and record["stage"] == "env"
    assert "reqs.txt will not install" in record["error"] and "not_a_project" in record["error"]


def test_requirements_may_not_replace_the_pinned_toolchain(tmp_path):
    (tmp_path / "m.py").write_text("import torch\ndef build():\n    return torch.nn.ReLU()\n")
    (tmp_path / "reqs.txt").write_text("numpy==1.24.4\n")
    done = cli("convert", "--route", "v4", "--model", "m.py:build", "--input", "x:1x4",
               "--requirements", "reqs.txt", "--out", "b", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    record = json.loads((tmp_path / "b" / "m-build" / "v4" / "conversion.json").read_text())
    assert record["stage"] == "env" and "numpy" in record["error"] and "1.19.5" in record["error"]
    assert "numpy==1.19.5" in subprocess.run(
        [str(ROOT / ".tox" / "v4" / "bin" / "python"), "-m", "pip", "freeze"],
        capture_output=True, text=True).stdout   # the pinned env is unchanged


def test_variants_are_listed_beside_the_routes(tmp_path):
    done, out = compare(tmp_path, "--model", "{}:build".format(ROOT / "examples" / "keyword_spotter.py"),
                        "--input", "mel:1x1x40x98", "--routes", "v9", "--variants", "fp32,lin8")
    assert done.returncode == 0, out
    result = doc(tmp_path, "keyword_spotter-build")
    routes = result["routes"]
    assert list(routes) == ["v9", "v9+fp32", "v9+lin8"]
    # Apple's typed execution: an fp32 ML Program never runs on the Neural Engine.
    assert routes["v9+fp32"]["compute_units"] == ["CPU", "GPU"]
    assert routes["v9"]["compute_units"] == ["CPU", "GPU", "NE"]
    assert routes["v9+fp32"]["verified"]["status"] == "matches"
    assert routes["v9+lin8"]["verified"]["status"] == "compressed"
    assert routes["v9+lin8"]["size_bytes"] < routes["v9"]["size_bytes"] < routes["v9+fp32"]["size_bytes"]
    assert result["recommended"] == "v9" and routes["v9+fp32"]["why_not"].startswith("larger")
    assert (tmp_path / "build" / "keyword_spotter-build" / "v9+lin8" / "model.mlpackage").is_dir()


def test_factory_with_a_checkpoint_converts_those_weights(tmp_path):
    source = ROOT / "examples" / "keyword_spotter.py"
    sys.path.insert(0, str(source.parent))
    try:
        from keyword_spotter import build
    finally:
        sys.path.pop(0)
    module = build().eval()
    with torch.no_grad():
        module.fc.bias += 3.0          # weights no seeded build would make
    torch.save({"state_dict": module.state_dict(), "epoch": 7}, tmp_path / "kws.ckpt")
    done = cli("convert", "--route", "v9", "--model", "{}:build".format(source), "--input",
               "mel:1x1x40x98", "--checkpoint", str(tmp_path / "kws.ckpt"), "--out", str(tmp_path / "b"))
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "b" / "keyword_spotter-build" / "v9" / "golden.npz") as g, torch.no_grad():
        expected = module(torch.from_numpy(g["input:mel"])).numpy()
        np.testing.assert_allclose(g["output:output_0"], expected, rtol=1e-5, atol=1e-5)


def test_convert_says_plainly_that_stock_v3_pann_diverges(tmp_path):
    done = cli("convert", "--route", "v3", "--model", "pann_mobilenetv1", "--samples", "12800",
               "--out", str(tmp_path / "b"))
    assert done.returncode == 1, done.stderr
    assert "verified: diverges" in done.stdout and "Core ML would reject it" in done.stdout
    assert ("find where: coreml-routes diagnose --route v3 --model pann_mobilenetv1 --samples 12800"
            in done.stdout)
    record = json.loads((tmp_path / "b" / "pann_mobilenetv1" / "v3" / "conversion.json").read_text())
    assert record["status"] == "ok" and record["verified"]["status"] == "diverges"
    assert record["torch_drift"]["max_abs_error"] < 1e-3   # torch 1.4 computes like 2.x here


def test_diagnose_takes_the_input_flags_and_says_which_input(tmp_path):
    """The zoo's example input stays within fp16; a full-scale 1 kHz tone (|STFT|^2 = 65536 >
    fp16's 65504) does not, and diagnose must say so when given it."""
    t = np.arange(32000) / 32000.0
    np.savez(tmp_path / "tone.npz", waveform=np.sin(2 * np.pi * 1000 * t).astype(np.float32)[None])
    done = cli("diagnose", "--route", "v4", "--model", "pann_mobilenetv1", "--precision", "fp16",
               "--inputs", str(tmp_path / "tone.npz"), "--out", str(tmp_path / "b"))
    assert done.returncode == 1, done.stderr
    assert "(fp16): overflow" in done.stdout
    assert "input: --inputs {}".format(tmp_path / "tone.npz") in done.stdout
