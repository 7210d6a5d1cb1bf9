"""verify over several golden cases: matches only if every case does, and names the worst."""
import numpy as np

from backends import builds
from bench.verify import verify


def _build(tmp_path):
    rng = np.random.RandomState(0)
    loud = builds.Case("example", {"x": rng.randn(1, 64).astype(np.float32)}, {})
    quiet = builds.Case("quiet", {"x": (1e-3 * rng.randn(1, 64)).astype(np.float32)}, {})
    for case in (loud, quiet):        # the "PyTorch" outputs: a fixed function of the input
        case.outputs = {"y": np.tanh(case.inputs["x"]) * 2.0}
    builds.write_cases(str(tmp_path), [loud, quiet])
    return {"artifact": "model.fake", "compute_precision": None}


def test_every_case_matching_matches(tmp_path):
    record = _build(tmp_path)
    got = verify(str(tmp_path), record, runner=lambda path, inputs, p: {"y": np.tanh(inputs["x"]) * 2.0})
    assert got["status"] == "matches" and [c["case"] for c in got["cases"]] == ["example", "quiet"]


def test_a_route_off_on_quiet_input_only_diverges_and_names_the_case(tmp_path):
    record = _build(tmp_path)

    def adds_an_epsilon(path, inputs, precision):   # like log(x + 1e-6): invisible when loud
        return {"y": np.tanh(inputs["x"]) * 2.0 + 1e-4}
    got = verify(str(tmp_path), record, runner=adds_an_epsilon)
    assert got["status"] == "diverges" and got["worst_case"] == "quiet"
    assert "worst of 2 cases: quiet" in got["reason"]
    example = next(c for c in got["cases"] if c["case"] == "example")
    assert example["status"] == "matches"


def test_fp16_of_a_stateful_model_runs_every_call_with_one_state(tmp_path):
    from bench.verify import worst_case_at_precision
    calls = np.arange(3, dtype=np.float32).reshape(3, 1, 1)          # K=3 calls of x: (1, 1)
    running = np.cumsum(calls, axis=0)                               # "PyTorch": a running sum
    builds.write_cases(str(tmp_path), [builds.Case("steps", {"x": calls}, {"y": running})])
    record = {"artifact": "model.fake", "steps": 3}
    seen = []

    def stateful(path, inputs, precision, steps=None):
        seen.append((inputs["x"].shape, steps))
        return {"y": np.cumsum(inputs["x"], axis=0)}
    got = worst_case_at_precision(str(tmp_path), record, "fp16", runner=stateful)
    assert seen == [((3, 1, 1), 3)] and got["within_tolerance"] and got["case"] == "steps"
