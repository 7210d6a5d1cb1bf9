"""bench on a Mac for routes et (ExecuTorch pybindings) and coreai (coreai.runtime), on any
OS: the real runtimes' code driven through injected fakes of the APIs they call. The fakes
compute with the PyTorch module itself, so the expected outputs are PyTorch's."""
import json
import types

import numpy as np
import pytest
import torch

from bench import macos, stats

FAST = dict(stats.MODELBENCH, rounds=2, inferences_per_round=3, trim_low=0, trim_high=0)


def module():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).eval()


def pytorch(x):
    with torch.no_grad():
        return module()(torch.from_numpy(x)).numpy()


X = np.random.RandomState(0).standard_normal((2, 4)).astype(np.float32)


# ------------------------------------------------------------------ ExecuTorch (route et)

class FakeProgram:
    """What _load_for_executorch returns: forward(list of tensors) -> list of tensors."""

    def __init__(self):
        self.calls = []

    def forward(self, args):
        self.calls.append([a.shape for a in args])
        x, scale = args
        with torch.no_grad():
            return [module()(x) * scale]


def test_executorch_measures_the_exported_unit_and_says_why_not_the_others(tmp_path):
    pte = tmp_path / "model.pte"
    pte.write_bytes(b"")
    # the user's names, in the program's order (a .pte keeps none): scale comes second
    (tmp_path / "executorch.json").write_text(json.dumps({"inputs": ["x", "scale"],
                                                          "outputs": ["y"]}))
    loaded = []

    def load_program(path):
        loaded.append(path)
        return FakeProgram()
    runtime = macos.ExecuTorchRuntime(load_program=load_program)
    inputs = {"scale": np.ones((1,), np.float32), "x": X}
    section = macos.measure(runtime, str(pte), inputs, {"y": pytorch(X)}, FAST)

    assert section["runtime"] == {"name": "executorch-pybindings", "injected": True}
    assert loaded == [str(pte)]                      # loaded once: for the exported unit only
    cell = section["compute_units"]["ALL"]
    assert cell["accuracy"]["y"]["max_abs_error"] == 0.0
    assert cell["latency"]["runs"] == 2 * 3 and cell["load_seconds"] >= 0
    for unit in ("CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE"):
        reason = section["compute_units"][unit]["not_measured"]
        assert "fixes its Core ML compute units at export (compile spec compute_units=all)" in reason
        assert unit in reason
    # no unpacked partitions beside it: nothing for coremlc to compile, said so
    assert section["compile"] == {"not_measured": "no unpacked Core ML partitions beside the .pte"}


# ------------------------------------------------------------------ Core AI (route coreai)

def fake_coreai_runtime(log):
    """The parts of coreai.runtime that CoreAIRuntime calls, recording how."""

    class Kind:
        def __init__(self, name):
            self.name = name

    class ComputeUnitKind:
        cpu = staticmethod(lambda: Kind("cpu"))
        gpu = staticmethod(lambda: Kind("gpu"))
        neural_engine = staticmethod(lambda: Kind("neural_engine"))

    class SpecializationOptions:
        def __init__(self, what):
            self.what = what

        @classmethod
        def cpu_only(cls):
            return cls("cpu_only")

        @classmethod
        def from_preferred_compute_unit_kind(cls, kind):
            return cls("preferred " + kind.name)

    class NDArray:
        def __init__(self, array):
            self.array = array

        def numpy(self):
            return self.array

    class Descriptor:
        def __init__(self, dtype, shape=None):
            self.dtype, self.shape = dtype, shape

    class Desc:
        input_names, output_names, state_names = ["x"], ["y"], ["cache"]

        def input_descriptor(self, name):
            return Descriptor("float16")

        def state_descriptor(self, name):
            return Descriptor("float32", [2])

    class Function:
        desc = Desc()

        async def __call__(self, inputs, state):
            x = inputs["x"].array
            log.append(("call", x.dtype.name, state["cache"].array.tolist()))
            return {"y": NDArray(pytorch(x.astype(np.float32)).astype(np.float16))}

    class AIModel:
        @staticmethod
        async def load(path, specialization_options=None):
            log.append(("load", path, specialization_options.what))
            model = types.SimpleNamespace(load_function=lambda name: Function())
            return model

    return types.SimpleNamespace(ComputeUnitKind=ComputeUnitKind, AIModel=AIModel,
                                 SpecializationOptions=SpecializationOptions, NDArray=NDArray)


def test_coreai_specializes_per_unit_and_runs_as_the_function_declares():
    log = []
    runtime = macos.CoreAIRuntime(runtime_module=fake_coreai_runtime(log))
    section = macos.measure(runtime, "m.aimodel", {"x": X}, {"y": pytorch(X)}, FAST)

    assert section["runtime"] == {"name": "coreai-runtime", "injected": True}
    assert list(section["compute_units"]) == ["CPU", "GPU", "NE"]
    assert [e[2] for e in log if e[0] == "load"] == [
        "cpu_only", "preferred gpu", "preferred neural_engine"]
    calls = [e for e in log if e[0] == "call"]
    assert calls and all(c[1] == "float16" and c[2] == [0.0, 0.0] for c in calls)  # cast, zeroed
    for unit in ("CPU", "GPU", "NE"):
        accuracy = section["compute_units"][unit]["accuracy"]["y"]
        assert 0 < accuracy["max_abs_error"] < 1e-3          # PyTorch's values through float16
    assert "specialized when it loads" in section["compile"]["not_measured"]
    assert "no per-op placement" in section["compute_units"]["NE"]["placement"]["not_measured"]


# ------------------------------------------------------------------ where it cannot measure

@pytest.mark.parametrize("kind,system,version,reason", [
    (macos.EXECUTORCH, "Linux", "", "needs macOS"),
    (macos.CORE_AI, "Linux", "", "needs macOS 27 (Core AI specialization)"),
    (macos.CORE_AI, "Darwin", "15.4",
     "needs macOS 27 (Core AI specialization); this Mac runs macOS 15.4"),
    (macos.CORE_ML, "Linux", "", "needs macOS"),
])
def test_every_cell_says_why_it_was_not_measured(kind, system, version, reason):
    found = macos.section(kind, "model", {"x": X}, {"y": pytorch(X)}, FAST,
                          system=system, mac_version=version)
    units = macos.CORE_AI_UNITS if kind == macos.CORE_AI else macos.COMPUTE_UNITS
    assert found["runtime"] is None
    assert found["compile"] == {"not_measured": reason}
    assert found["compute_units"] == {u: {"not_measured": reason} for u in units}


def test_a_mac_that_can_but_lacks_the_env_says_so_and_a_runtime_of_another_kind_is_not_used():
    coreml_fake = macos.CoreMLRuntime()     # a Core ML runtime: never used for a .pte
    found = macos.section(macos.EXECUTORCH, "model.pte", {"x": X}, {"y": pytorch(X)}, FAST,
                          runtime=coreml_fake, env_python=None, system="Darwin",
                          mac_version="26.1")
    assert found["compute_units"]["ALL"] == {"not_measured": "the route's env has no Python here"}
    found = macos.section(macos.CORE_AI, "m.aimodel", {"x": X}, {"y": pytorch(X)}, FAST,
                          system="Darwin", mac_version="27.0")
    assert found["compute_units"]["NE"] == {"not_measured": "the route's env has no Python here"}


def test_bench_rows_know_which_runtime_runs_each_route():
    from bench.run import runtime_kind
    assert runtime_kind("et+fp32") == macos.EXECUTORCH and runtime_kind("coreai") == macos.CORE_AI
    assert runtime_kind("v9+lut4") == macos.CORE_ML
