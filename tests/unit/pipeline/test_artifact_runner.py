"""pipeline.conversions.artifact_runner: a route runtime killed by a signal (coreai-core's
interpreter has aborted now and then) is run once more; any other error is not retried; the
runners of one env share one serving child."""
import pytest

import backends.artifact_run as artifact_run
from backends.artifact_run import ArtifactRunError
from pipeline import conversions


class Backend:
    name, runs_in_host = "coreai", False


def runner_with(monkeypatch, outcomes):
    calls = []

    class FakeEnvRunner:
        def __init__(self, python, route, env=None):
            self.route = route

        def __call__(self, path, inputs, precision, steps=None):
            calls.append(self.route)
            outcome = outcomes[len(calls) - 1]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        def close(self):
            pass
    monkeypatch.setattr(artifact_run, "EnvRunner", FakeEnvRunner)
    monkeypatch.setattr(conversions, "_RUNNERS", {})
    return conversions.artifact_runner(Backend(), python="py"), calls


def test_a_crash_is_retried_once(monkeypatch):
    run, calls = runner_with(monkeypatch, [ArtifactRunError("the route's runtime was killed by signal 6"),
                                           {"y": 1}])
    assert run("m.aimodel", {}, "fp32") == {"y": 1} and len(calls) == 2


def test_two_crashes_and_other_errors_are_raised(monkeypatch):
    crash = ArtifactRunError("the route's runtime was killed by signal 6")
    run, calls = runner_with(monkeypatch, [crash, crash])
    with pytest.raises(ArtifactRunError):
        run("m.aimodel", {}, "fp32")
    run, calls = runner_with(monkeypatch, [ArtifactRunError("bad input shape")])
    with pytest.raises(ArtifactRunError):
        run("m.aimodel", {}, "fp32")
    assert len(calls) == 1


def test_runners_of_one_env_share_its_child(monkeypatch):
    runner_with(monkeypatch, [])
    first = conversions.shared_env_runner("py", "et")
    assert conversions.shared_env_runner("py", "et") is first
    assert conversions.shared_env_runner("py", "coreai") is not first
    assert conversions.shared_env_runner("other-py", "et") is not first
