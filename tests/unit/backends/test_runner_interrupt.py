"""Ctrl-C mid-run leaves nothing behind: each command, sent SIGINT from here while it works,
removes its partial files, prints one line and exits 130; a later run sweeps staging folders
of processes that are gone."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends import runner

ROOT = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get("COREML_ROUTES_BUILD") or ROOT / "build")


def start(*args, env=None):
    """A command in its own process group, as a terminal runs a foreground job."""
    env = dict(os.environ if env is None else env, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def wait_for(condition, proc, what, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail("finished before {}: {}".format(what, proc.stderr.read()))
        if time.time() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for " + what)
        time.sleep(0.05)


def converting(model_dir):
    """True once a worker is inside the converter (its .stage file says so)."""
    for stage_file in model_dir.glob(".*.staging-*/.stage"):
        try:
            if stage_file.read_text() in ("trace", "export", "convert"):
                return True
        except OSError:
            pass
    return False


def ctrl_c(proc):
    """What Ctrl-C does: SIGINT to the whole foreground process group (the command and its
    converter child)."""
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def assert_one_line_exit_130(code, err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 130, err
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err
    assert "Traceback" not in err


def test_convert_interrupted_leaves_no_staging_folder(tmp_path):
    out = tmp_path / "build"
    env = dict(os.environ, COREML_ROUTES_PYTHON_V9=sys.executable)
    proc = start("-m", "coreml_routes.cli", "convert", "--route", "v9", "--model", "logmel",
                 "--samples", "16000", "--out", str(out), env=env)
    wait_for(lambda: converting(out / "logmel"), proc, "the conversion to start")
    code, _, err = ctrl_c(proc)
    assert_one_line_exit_130(code, err)
    assert not out.exists(), list(out.rglob("*"))   # it made build/ for this run: gone too


def test_batch_interrupted_keeps_finished_conversions_only(tmp_path):
    """What `tox -e v4` runs: the finished model stays recorded, the one in progress vanishes."""
    out, results = tmp_path / "build", tmp_path / "results"
    proc = start("-m", "backends.batch", "--route", "v9", "--models", "pann_upsample", "logmel",
                 "--samples", "16000", "--out", str(out), "--results", str(results))
    wait_for(lambda: converting(out / "logmel"), proc, "the second conversion to start")
    code, stdout, err = ctrl_c(proc)
    assert_one_line_exit_130(code, err)
    assert "pann_upsample" in stdout
    assert sorted(p.name for p in (out / "pann_upsample").iterdir()) == ["v9"]
    assert not (out / "logmel").exists()
    recorded = json.loads((results / "conversion-v9.json").read_text())["models"]
    assert list(recorded) == ["pann_upsample"]


def test_bench_interrupted_keeps_finished_rows(tmp_path):
    if not (BUILD / "logmel" / "v3" / "conversion.json").exists():
        pytest.skip("no logmel/v3 build in {} (tox -e v3 makes it)".format(BUILD))
    out = tmp_path / "results"
    proc = start("-m", "coreml_routes.cli", "bench", "--models", "logmel", "--routes", "v3",
                 "--build", str(BUILD), "--out", str(out), "--host", "h", "--repeat", "2",
                 "--warmup", "0", "--reference-repeat", "100000",
                 "--no-progress")
    wait_for(lambda: (out / "h.json").exists(), proc, "the first row to be written")
    code, _, err = ctrl_c(proc)
    assert_one_line_exit_130(code, err)
    assert [p.name for p in out.iterdir()] == ["h.json"]     # no half-written temporary file
    assert "logmel" in json.loads((out / "h.json").read_text())["baselines"]


def test_stale_staging_folders_of_dead_processes_are_swept(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / ".v4.staging-{}".format(gone)
    live = tmp_path / ".v4.staging-{}".format(os.getpid())
    kept = tmp_path / "v4"
    for folder in (stale, live, kept):
        folder.mkdir()
        (folder / "model.mlmodel").write_bytes(b"x")
    runner.sweep_stale_staging(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, kept.name])
