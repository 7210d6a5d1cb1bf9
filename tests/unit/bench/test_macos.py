"""The macOS path, on any OS: a fake runtime injected through the CoreMLRuntime interface."""
import math

import numpy as np
import pytest

from bench import macos, results, stats

FAST = dict(stats.MODELBENCH, rounds=2, inferences_per_round=5, trim_low=1, trim_high=1)


class FakeModel:
    def __init__(self, outputs):
        self.outputs = outputs

    def predict(self, inputs):
        return self.outputs


class FakeRuntime(macos.CoreMLRuntime):
    name = "fake"

    def __init__(self, outputs, fail_unit=None):
        self.outputs = outputs
        self.fail_unit = fail_unit
        self.loaded = []

    def load(self, path, compute_unit):
        self.loaded.append(compute_unit)
        if compute_unit == self.fail_unit:
            raise RuntimeError("unsupported on this device")
        return FakeModel(self.outputs)

    def compile(self, path):
        return {"ok": True, "seconds": 0.5, "error": None}

    def compute_plan(self, path, compute_unit):
        if compute_unit == "CPU_ONLY":
            raise macos.NotAvailable("MLComputePlan unavailable on this OS: too old")
        return [{"name": "conv1", "type": "conv", "device": "NeuralEngine",
                 "supported": ["CPU", "GPU", "NeuralEngine"], "cost": 0.5},
                {"name": "conv2", "type": "conv", "device": "NeuralEngine",
                 "supported": ["CPU", "GPU", "NeuralEngine"], "cost": 0.25},
                {"name": "out", "type": "sigmoid", "device": "CPU", "supported": ["CPU"], "cost": 0.25}]


def golden():
    scores = np.linspace(0.0, 1.0, 10, dtype=np.float32)[None, :]   # top-5 labels: 9, 8, 7, 6, 5
    frames = np.arange(6, dtype=np.float32).reshape(1, 2, 3) + 1.0
    return {"clip_output": scores, "frame_output": frames}


def test_fake_runtime_accuracy_math_and_placement():
    expected = golden()
    device = {"clip_output": expected["clip_output"].copy(),
              "frame_output": expected["frame_output"] + 0.25}
    # swap label 5 (in PyTorch's top-5) for label 0 (outside it): 4 of 5 labels kept
    device["clip_output"][0, 0], device["clip_output"][0, 5] = 0.9, 0.0
    runtime = FakeRuntime(device)
    section = macos.measure(runtime, "model.mlpackage", {"x": np.zeros(1)}, expected, FAST)

    assert section["runtime"] == {"name": "fake", "injected": True}
    assert section["protocol"] == FAST
    assert section["compile"]["ok"] is True
    assert runtime.loaded == list(macos.COMPUTE_UNITS)
    cell = section["compute_units"]["ALL"]
    assert cell["latency"]["runs"] == 2 * 3 and cell["latency"]["unit"] == "ms"   # 1 + 1 trimmed a round
    assert cell["latency"]["protocol"] == FAST
    assert cell["load_seconds"] >= 0 and cell["first_prediction_seconds"] >= 0
    frame = cell["accuracy"]["frame_output"]
    assert frame["max_abs_error"] == pytest.approx(0.25)
    signal = float(np.sum(np.arange(1.0, 7.0) ** 2))        # 1^2 + ... + 6^2 = 91
    noise = 6 * 0.25 ** 2
    assert frame["snr_db"] == pytest.approx(10 * math.log10(signal / noise), rel=1e-9)
    clip = cell["accuracy"]["clip_output"]
    assert clip["top5_agreement"] == pytest.approx(4 / 5)
    assert clip["max_abs_error"] == pytest.approx(max(abs(0.9 - 0.0), abs(0.0 - 5 / 9)), rel=1e-6)
    assert cell["placement"]["devices"] == {"NeuralEngine": 2, "CPU": 1}
    cost = cell["placement"]["estimated_cost"]
    assert cost["neural_engine_share"] == pytest.approx(0.75)      # (0.5 + 0.25) / 1.0
    assert cost["by_device"] == {"NeuralEngine": 0.75, "CPU": 0.25}
    assert cell["placement"]["layers"][2]["supported"] == ["CPU"]
    assert section["compute_units"]["CPU_ONLY"]["placement"] == {
        "not_measured": "MLComputePlan unavailable on this OS: too old"}


def test_a_compute_unit_that_fails_is_a_cell_with_its_reason():
    section = macos.measure(FakeRuntime(golden(), fail_unit="CPU_AND_NE"), "m", {}, golden(), FAST)
    reason = section["compute_units"]["CPU_AND_NE"]["not_measured"]
    assert "CPU_AND_NE" in reason and "unsupported on this device" in reason
    assert "latency" in section["compute_units"]["ALL"]


def test_injected_numbers_never_reach_results(tmp_path):
    section = macos.measure(FakeRuntime(golden()), "m", {}, golden(), FAST)
    doc = {"schema": results.SCHEMA, "kind": results.KIND, "host": {"name": "mac"}, "baselines": {},
           "rows": {"m": {"v9": {"model": "m", "route": "v9", "status": "ok", "coreml": section}}}}
    with pytest.raises(results.InjectedResultsError):
        results.write_host(str(tmp_path), doc)
    assert list(tmp_path.iterdir()) == []


def test_a_subclass_of_the_real_runtime_is_still_injected():
    class Sneaky(macos.CoreMLToolsRuntime):
        name = "coremltools"

        def load(self, path, compute_unit):
            return FakeModel(golden())

        def compile(self, path):
            return {"ok": True, "seconds": 0.0, "error": None}

        def compute_plan(self, path, compute_unit):
            return []

    section = macos.measure(Sneaky(), "m", {}, golden(), FAST)
    assert section["runtime"]["injected"] is True


def test_linux_cells_say_needs_macos():
    section = macos.not_measured_section()
    assert section["compile"] == {"not_measured": "needs macOS"}
    assert all(c == {"not_measured": "needs macOS"} for c in section["compute_units"].values())
    assert set(section["compute_units"]) == {"CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE", "ALL"}


def test_placements_read_an_mlcomputeplan_shaped_object():
    from types import SimpleNamespace as NS

    class MLNeuralEngineComputeDevice:
        pass

    class MLCPUComputeDevice:
        pass

    ops = [NS(operator_name="const", outputs=[NS(name="w")]),
           NS(operator_name="conv", outputs=[NS(name="c1")]),
           NS(operator_name="sigmoid", outputs=[NS(name="y")])]
    ne, cpu = MLNeuralEngineComputeDevice(), MLCPUComputeDevice()
    usage = {"c1": NS(preferred_compute_device=ne, supported_compute_devices=[ne, cpu]),
             "y": NS(preferred_compute_device=cpu, supported_compute_devices=[cpu])}
    cost = {"c1": NS(weight=0.9), "y": None}     # MLComputePlan may not know an op's cost
    program = NS(functions={"main": NS(block=NS(operations=ops))})
    plan = NS(model_structure=NS(neural_network=None, program=program),
              get_compute_device_usage_for_mlprogram_operation=lambda op: usage[op.outputs[0].name],
              get_estimated_cost_for_mlprogram_operation=lambda op: cost[op.outputs[0].name])
    rows = macos._placements(plan)
    assert rows == [{"name": "c1", "type": "conv", "device": "NeuralEngine",
                     "supported": ["CPU", "NeuralEngine"], "cost": 0.9},
                    {"name": "y", "type": "sigmoid", "device": "CPU", "supported": ["CPU"], "cost": None}]
    summary = macos.placement_summary(rows)
    assert summary["estimated_cost"]["neural_engine_share"] == 1.0
    assert summary["estimated_cost"]["ops_without_cost"] == 1


def test_neuralnetwork_layers_have_devices_but_no_estimated_cost():
    from types import SimpleNamespace as NS

    class MLGPUComputeDevice:
        pass

    gpu = MLGPUComputeDevice()
    layers = [NS(name="conv1", type="convolution"), NS(name="relu", type="activation")]
    plan = NS(model_structure=NS(neural_network=NS(layers=layers), program=None),
              get_compute_device_usage_for_neuralnetwork_layer=lambda layer: NS(
                  preferred_compute_device=gpu, supported_compute_devices=[gpu]))
    summary = macos.placement_summary(macos._placements(plan))
    assert summary["devices"] == {"GPU": 2}
    assert summary["estimated_cost"] == {
        "not_measured": "MLComputePlan gives estimated costs for ML Program operations only"}
