"""Real Core ML on macOS, behind a small runtime interface.

``CoreMLRuntime`` is what the benchmark asks of Core ML. ``CoreMLToolsRuntime`` implements it
with coremltools (macOS only). Tests inject a fake through the same interface; anything
measured through a runtime that is not ``CoreMLToolsRuntime`` is marked ``injected`` and
``bench.results`` refuses to write it.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
import time

from bench.accuracy import compare
from bench.stats import MODELBENCH, time_rounds

COMPUTE_UNITS = ("CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE", "ALL")
NEEDS_MACOS = "needs macOS"


class NotAvailable(Exception):
    """This OS / Xcode cannot do what was asked (no xcrun, no MLComputePlan): a reason, not a bug."""


class CoreMLRuntime:
    """The interface. ``load`` returns an object with ``predict(inputs) -> {name: array}``."""

    name = "interface"

    def load(self, path, compute_unit):
        raise NotImplementedError

    def compile(self, path):
        """Compile with Apple's compiler; -> {"ok": bool, "seconds": float, "error": str|None}."""
        raise NotImplementedError

    def compute_plan(self, path, compute_unit):
        """-> [{"name", "type", "device", "supported", "cost"}] per layer / op: the preferred
        device, the devices that could run it, and MLComputePlan's estimated share of the
        model's work (ML Program ops only; None for NeuralNetwork layers). Raise NotAvailable
        when the OS lacks MLComputePlan."""
        raise NotImplementedError


class CoreMLToolsRuntime(CoreMLRuntime):
    """Core ML itself, through coremltools (``MLModel.predict`` works only on macOS)."""

    name = "coremltools"

    def load(self, path, compute_unit):
        import coremltools as ct
        return ct.models.MLModel(path, compute_units=getattr(ct.ComputeUnit, compute_unit))

    def compile(self, path):
        if shutil.which("xcrun") is None:
            raise NotAvailable("xcrun not found (install the Xcode command line tools)")
        with tempfile.TemporaryDirectory(prefix="coremlc-") as out:
            start = time.perf_counter()
            done = subprocess.run(["xcrun", "coremlc", "compile", path, out],
                                  capture_output=True, text=True)
            seconds = time.perf_counter() - start
        error = None if done.returncode == 0 else (done.stderr or done.stdout).strip()[-500:]
        return {"ok": done.returncode == 0, "seconds": round(seconds, 4), "error": error}

    def compute_plan(self, path, compute_unit):
        import coremltools as ct
        try:
            from coremltools.models.compute_plan import MLComputePlan
        except ImportError as e:
            raise NotAvailable("coremltools has no MLComputePlan: {}".format(e))
        with tempfile.TemporaryDirectory(prefix="coremlc-") as out:
            compiled = ct.utils.compile_model(path, os.path.join(out, "model.mlmodelc"))
            try:
                plan = MLComputePlan.load_from_path(
                    compiled, compute_units=getattr(ct.ComputeUnit, compute_unit))
            except Exception as e:   # MLComputePlan needs macOS 14.4+
                raise NotAvailable("MLComputePlan unavailable on this OS: {}".format(e))
            return _placements(plan)


def _placements(plan):
    structure = plan.model_structure
    rows = []
    if structure.neural_network is not None:
        for layer in structure.neural_network.layers:
            usage = plan.get_compute_device_usage_for_neuralnetwork_layer(layer)
            rows.append(dict(name=layer.name, type=layer.type, cost=None, **_devices(usage)))
    elif structure.program is not None:
        for op in structure.program.functions["main"].block.operations:
            if op.operator_name == "const":
                continue   # constants are not placed on a device
            usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
            cost = plan.get_estimated_cost_for_mlprogram_operation(op)
            name = op.outputs[0].name if op.outputs else op.operator_name
            rows.append(dict(name=name, type=op.operator_name,
                             cost=None if cost is None else float(cost.weight), **_devices(usage)))
    return rows


_DEVICE_NAMES = {"MLCPUComputeDevice": "CPU", "MLGPUComputeDevice": "GPU",
                 "MLNeuralEngineComputeDevice": "NeuralEngine"}


def _device_name(device):
    name = type(device).__name__   # MLCPUComputeDevice, ...
    return _DEVICE_NAMES.get(name, name)


def _devices(usage):
    if usage is None:
        return {"device": "unknown", "supported": []}
    return {"device": _device_name(usage.preferred_compute_device),
            "supported": sorted(_device_name(d) for d in usage.supported_compute_devices)}


def placement_summary(plan):
    """Per-op rows -> ops per preferred device and the share of estimated cost each device
    takes (``neural_engine_share``: the Neural Engine's part, 0..1)."""
    devices, costs = {}, {}
    for row in plan:
        devices[row["device"]] = devices.get(row["device"], 0) + 1
        if row.get("cost") is not None:
            costs[row["device"]] = costs.get(row["device"], 0.0) + row["cost"]
    total = sum(costs.values())
    if total > 0:
        share = {d: round(c / total, 4) for d, c in costs.items()}
        cost = {"by_device": share, "neural_engine_share": share.get("NeuralEngine", 0.0),
                "ops_without_cost": sum(1 for r in plan if r.get("cost") is None)}
    else:
        cost = not_measured("MLComputePlan gives estimated costs for ML Program operations only")
    return {"devices": devices, "estimated_cost": cost, "layers": plan}


def is_macos():
    return platform.system() == "Darwin"


def not_measured(reason):
    return {"not_measured": reason}


def not_measured_section(reason=NEEDS_MACOS):
    """Every macOS-only cell of a row, each saying why it is empty — never an estimate."""
    return {"runtime": None, "compile": not_measured(reason),
            "compute_units": {cu: not_measured(reason) for cu in COMPUTE_UNITS}}


def measure(runtime, model_path, inputs, golden, protocol=MODELBENCH):
    """Load time, first prediction, latency by ``protocol``, accuracy and placement per
    compute unit, plus the ``coremlc`` compile check. Each failure becomes a cell with its
    reason."""
    injected = type(runtime) is not CoreMLToolsRuntime
    section = {"runtime": {"name": runtime.name, "injected": injected}, "protocol": dict(protocol)}
    try:
        section["compile"] = runtime.compile(model_path)
    except NotAvailable as e:
        section["compile"] = not_measured(str(e))
    except Exception as e:   # noqa: BLE001
        section["compile"] = not_measured("coremlc: {}: {}".format(type(e).__name__, e))
    section["compute_units"] = {cu: _measure_unit(runtime, cu, model_path, inputs, golden, protocol)
                                for cu in COMPUTE_UNITS}
    return section


def _measure_unit(runtime, cu, model_path, inputs, golden, protocol):
    try:
        start = time.perf_counter()
        model = runtime.load(model_path, cu)
        load_seconds = time.perf_counter() - start
        start = time.perf_counter()
        outputs = model.predict(inputs)   # the first prediction: it may still specialise the model
        first_seconds = time.perf_counter() - start
        cell = {"load_seconds": round(load_seconds, 4),
                "first_prediction_seconds": round(first_seconds, 4),
                "latency": time_rounds(lambda: model.predict(inputs), protocol),
                "accuracy": compare(outputs, golden)}
    except Exception as e:   # noqa: BLE001 — Core ML refusing a model is a result
        return not_measured("Core ML {}: {}: {}".format(cu, type(e).__name__, e))
    try:
        cell["placement"] = placement_summary(runtime.compute_plan(model_path, cu))
    except NotAvailable as e:
        cell["placement"] = not_measured(str(e))
    except Exception as e:   # noqa: BLE001
        cell["placement"] = not_measured("MLComputePlan: {}: {}".format(type(e).__name__, e))
    return cell
