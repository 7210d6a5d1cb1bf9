"""pipeline/envs.py: routes that share a tox env create it once, one after the other."""
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from pipeline import envs


def test_routes_sharing_an_env_create_it_once_not_at_the_same_time(tmp_path, monkeypatch):
    monkeypatch.setattr(envs, "ROOT", tmp_path)
    monkeypatch.setattr(envs, "require_interpreter", lambda backend: None)
    running, runs = [], []

    def fake_tox(cmd, cwd=None, **kwargs):        # tox creating .tox/<env>, slowly
        running.append(1)
        runs.append(len(running))                 # how many tox runs at this moment
        time.sleep(0.3)
        python = tmp_path / ".tox" / cmd[cmd.index("-e") + 1] / "bin" / "python"
        python.parent.mkdir(parents=True, exist_ok=True)
        python.write_text("")
        running.pop()
        return subprocess.CompletedProcess(cmd, 0, stdout="ok")
    monkeypatch.setattr(envs.subprocess, "run", fake_tox)
    got = {}

    def start(name):
        got[name] = envs.env_python(SimpleNamespace(name=name, env="v9", python="3.11"),
                                    log=sys.stderr)
    threads = [threading.Thread(target=start, args=(name,)) for name in ("v9", "v9-export")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runs == [1]                            # one tox run, never two at once
    assert got["v9"] == got["v9-export"] == str(tmp_path / ".tox" / "v9" / "bin" / "python")
