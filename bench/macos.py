"""Real Core ML on macOS, behind a small runtime interface.

``CoreMLRuntime`` is what the benchmark asks of a device runtime. Three implement it:

- ``CoreMLToolsRuntime``: Core ML through coremltools (macOS only), for .mlmodel / .mlpackage;
- ``ExecuTorchRuntime``: an ExecuTorch program (route et's .pte) through ExecuTorch's
  pybindings (``portable_lib._load_for_executorch(path).forward([...])``), whose macOS wheel
  registers the Core ML delegate (its Linux wheel does not: "Backend CoreMLBackend is not
  registered"). A .pte fixes its partitions' Core ML compute units at export (compile spec
  ``compute_units``, ALL by default) and the pybindings take none at load: only that unit
  is measured, the other cells say why;
- ``CoreAIRuntime``: a Core AI asset (route coreai's .aimodel) through ``coreai.runtime``:
  ``AIModel.load(path, specialization_options=...)`` per compute unit kind
  (``SpecializationOptions.cpu_only()``, ``from_preferred_compute_unit_kind(
  ComputeUnitKind.gpu() / .neural_engine())``), which exists on macOS 27+ only.

The ExecuTorch and Core AI runtimes run in their routes' envs (``python -m bench.macos``,
started by ``measure_in_env``): the host only reads the section they write. Tests inject a
fake through the same interface (or a fake ExecuTorch loader / ``coreai.runtime`` module);
anything measured that way is marked ``injected`` and ``bench.results`` refuses to write it.
Off macOS, or below macOS 27 for Core AI, every cell says why it was not measured.
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
CORE_AI_UNITS = ("CPU", "GPU", "NE")     # coreai.runtime ComputeUnitKind cpu / gpu / neural_engine
NEEDS_MACOS = "needs macOS"
NEEDS_MACOS_27 = "needs macOS 27 (Core AI specialization)"
CORE_ML, EXECUTORCH, CORE_AI = "Core ML", "ExecuTorch + Core ML", "Core AI"   # Backend.runtime


class NotAvailable(Exception):
    """This OS / Xcode cannot do what was asked (no xcrun, no MLComputePlan): a reason, not a bug."""


class CoreMLRuntime:
    """The interface. ``load`` returns an object with ``predict(inputs) -> {name: array}``."""

    name = "interface"
    kind = CORE_ML          # the Backend.runtime whose artifacts it runs
    units = COMPUTE_UNITS   # the cells of a row
    injected = False        # True when a fake stands behind a real runtime's API

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


def not_measured_section(reason=NEEDS_MACOS, units=COMPUTE_UNITS):
    """Every macOS-only cell of a row, each saying why it is empty — never an estimate."""
    return {"runtime": None, "compile": not_measured(reason),
            "compute_units": {cu: not_measured(reason) for cu in units}}


def measure(runtime, model_path, inputs, golden, protocol=MODELBENCH):
    """Load time, first prediction, latency by ``protocol``, accuracy and placement per
    compute unit, plus the ``coremlc`` compile check. Each failure becomes a cell with its
    reason."""
    injected = type(runtime) not in REAL_RUNTIMES or bool(runtime.injected)
    section = {"runtime": {"name": runtime.name, "injected": injected}, "protocol": dict(protocol)}
    try:
        section["compile"] = runtime.compile(model_path)
    except NotAvailable as e:
        section["compile"] = not_measured(str(e))
    except Exception as e:   # noqa: BLE001
        section["compile"] = not_measured("coremlc: {}: {}".format(type(e).__name__, e))
    section["compute_units"] = {cu: _measure_unit(runtime, cu, model_path, inputs, golden, protocol)
                                for cu in runtime.units}
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
    except NotAvailable as e:   # this runtime cannot run that unit: its reason
        return not_measured(str(e))
    except Exception as e:   # noqa: BLE001 — Core ML refusing a model is a result
        return not_measured("{} {}: {}: {}".format(runtime.kind, cu, type(e).__name__, e))
    try:
        cell["placement"] = placement_summary(runtime.compute_plan(model_path, cu))
    except NotAvailable as e:
        cell["placement"] = not_measured(str(e))
    except Exception as e:   # noqa: BLE001
        cell["placement"] = not_measured("MLComputePlan: {}: {}".format(type(e).__name__, e))
    return cell


# --- ExecuTorch (route et) and Core AI (route coreai) -----------------------------------------

EXPORTED_UNIT = "ALL"   # CoreMLPartitioner's default compile spec compute_units


class ExecuTorchRuntime(CoreMLRuntime):
    """A .pte through ExecuTorch's pybindings. ``load_program``: injected in tests, else
    ``executorch.extension.pybindings.portable_lib._load_for_executorch``."""

    name = "executorch-pybindings"
    kind = EXECUTORCH

    def __init__(self, load_program=None, exported_unit=EXPORTED_UNIT):
        self._load_program = load_program
        self.injected = load_program is not None
        self.exported_unit = exported_unit

    def load(self, path, compute_unit):
        if compute_unit != self.exported_unit:
            raise NotAvailable(
                "the .pte fixes its Core ML compute units at export (compile spec compute_units="
                "{}); ExecuTorch's pybindings take none at load: re-export for {}".format(
                    self.exported_unit.lower(), compute_unit))
        load_program = self._load_program
        if load_program is None:
            from executorch.extension.pybindings.portable_lib import _load_for_executorch
            load_program = _load_for_executorch
        names_in, names_out = _pte_names(path)
        return _ExecuTorchModel(load_program(path), names_in, names_out)

    def compile(self, path):
        """``coremlc`` on each unpacked Core ML partition (ExecuTorch's Core ML backend
        compiles them when the program loads on the device)."""
        parts = _partitions(path)
        if not parts:
            raise NotAvailable("no unpacked Core ML partitions beside the .pte")
        done = [CoreMLToolsRuntime().compile(p) for p in parts]
        failed = [d["error"] for d in done if not d["ok"]]
        return {"ok": not failed, "seconds": round(sum(d["seconds"] for d in done), 4),
                "error": failed[0] if failed else None, "partitions": len(parts)}

    def compute_plan(self, path, compute_unit):
        """MLComputePlan of each partition (named ``partition <i>/<op>``); the ops outside
        Core ML run on ExecuTorch's CPU kernels and are not in it."""
        rows = []
        for i, part in enumerate(_partitions(path)):
            for row in CoreMLToolsRuntime().compute_plan(part, compute_unit):
                rows.append(dict(row, name="partition {}/{}".format(i, row["name"])))
        return rows


class _ExecuTorchModel:
    def __init__(self, module, names_in, names_out):
        self.module, self.names_in, self.names_out = module, names_in, names_out

    def predict(self, inputs):
        import numpy as np
        import torch
        names_in = self.names_in or list(inputs)
        args = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in names_in]
        outputs = self.module.forward(args)
        names = self.names_out or ["output_{}".format(i) for i in range(len(outputs))]
        return {n: np.asarray(o.numpy() if hasattr(o, "numpy") else o)
                for n, o in zip(names, outputs)}


def _pte_names(path):
    """The user's input / output names, which a .pte does not keep (executorch.json)."""
    import json
    try:
        with open(os.path.join(os.path.dirname(path), "executorch.json")) as f:
            sidecar = json.load(f)
    except (OSError, ValueError):
        return None, None
    return sidecar.get("inputs"), sidecar.get("outputs")


def _partitions(path):
    from backends.builds import partition_paths
    return partition_paths(os.path.dirname(path))


class CoreAIRuntime(CoreMLRuntime):
    """An .aimodel through ``coreai.runtime``, specialized per compute unit kind.
    ``runtime_module``: injected in tests, else ``coreai.runtime``."""

    name = "coreai-runtime"
    kind = CORE_AI
    units = CORE_AI_UNITS

    def __init__(self, runtime_module=None):
        self._runtime = runtime_module
        self.injected = runtime_module is not None

    def _module(self):
        if self._runtime is None:
            import coreai.runtime
            self._runtime = coreai.runtime
        return self._runtime

    def options(self, unit):
        """SpecializationOptions: CPU only, or GPU / Neural Engine preferred."""
        rt = self._module()
        if unit == "CPU":
            return rt.SpecializationOptions.cpu_only()
        kind = {"GPU": rt.ComputeUnitKind.gpu, "NE": rt.ComputeUnitKind.neural_engine}[unit]()
        return rt.SpecializationOptions.from_preferred_compute_unit_kind(kind)

    def load(self, path, compute_unit):
        import asyncio
        rt = self._module()
        options = self.options(compute_unit)
        loop = asyncio.new_event_loop()       # one loop per loaded model, reused by predict
        model = loop.run_until_complete(rt.AIModel.load(path, specialization_options=options))
        return _CoreAIModel(loop, model.load_function("main"), rt.NDArray)

    def compile(self, path):
        raise NotAvailable("a Core AI asset is specialized when it loads (load_seconds, per "
                           "compute unit); there is no separate compile step")

    def compute_plan(self, path, compute_unit):
        raise NotAvailable("coreai-core publishes no per-op placement for a specialized model")


class _CoreAIModel:
    def __init__(self, loop, function, ndarray):
        self.loop, self.function, self.ndarray = loop, function, ndarray

    def predict(self, inputs):
        import numpy as np
        desc = self.function.desc
        given = dict((n, self.ndarray(np.ascontiguousarray(np.asarray(inputs[n]).astype(
            np.dtype(desc.input_descriptor(n).dtype))))) for n in desc.input_names)
        state = {}
        for n in desc.state_names:          # states start at zero (not zeroed by the runtime)
            d = desc.state_descriptor(n)
            state[n] = self.ndarray(np.zeros([int(s) for s in d.shape], np.dtype(d.dtype)))
        result = self.loop.run_until_complete(self.function(inputs=given, state=state))
        return dict((n, np.array(result[n].numpy())) for n in desc.output_names)


REAL_RUNTIMES = (CoreMLToolsRuntime, ExecuTorchRuntime, CoreAIRuntime)
RUNTIMES = {CORE_ML: CoreMLToolsRuntime, EXECUTORCH: ExecuTorchRuntime, CORE_AI: CoreAIRuntime}


def unavailable(kind, system=None, mac_version=None):
    """Why this host cannot measure artifacts run by ``kind`` (a Backend.runtime), or None."""
    system = platform.system() if system is None else system
    if kind == CORE_AI:
        if system != "Darwin":
            return NEEDS_MACOS_27
        version = platform.mac_ver()[0] if mac_version is None else mac_version
        try:
            major = int(version.split(".")[0])
        except ValueError:
            return NEEDS_MACOS_27 + "; macOS version unknown"
        if major < 27:
            return "{}; this Mac runs macOS {}".format(NEEDS_MACOS_27, version)
        return None
    return None if system == "Darwin" else NEEDS_MACOS


def section(kind, model_path, inputs, golden, protocol=MODELBENCH, runtime=None,
            env_python=None, system=None, mac_version=None):
    """The device section of a bench row for an artifact run by ``kind``: measured through
    ``runtime`` when one of that kind is given (injected in tests); else, on a host that
    can, by the real runtime — in this process for Core ML, in the route's env
    (``env_python``) for ExecuTorch and Core AI; else every cell says why not."""
    units = RUNTIMES[kind].units
    if runtime is not None and runtime.kind == kind:
        return measure(runtime, model_path, inputs, golden, protocol)
    reason = unavailable(kind, system, mac_version)
    if reason:
        return not_measured_section(reason, units)
    if kind == CORE_ML:
        return measure(CoreMLToolsRuntime(), model_path, inputs, golden, protocol)
    if not env_python:
        return not_measured_section("the route's env has no Python here", units)
    return measure_in_env(env_python, kind, model_path, protocol)


def measure_in_env(python, kind, model_path, protocol=MODELBENCH, timeout=3600):
    """``measure`` by the real runtime of ``kind``, run by ``python`` (the route's env), on
    the golden inputs beside ``model_path``; its section, or every cell saying why not."""
    import json
    units = RUNTIMES[kind].units
    with tempfile.TemporaryDirectory(prefix="bench-env-") as tmp:
        out = os.path.join(tmp, "section.json")
        cmd = [python, "-m", "bench.macos", "--kind", kind, "--artifact", model_path,
               "--protocol", json.dumps(dict(protocol)), "--out", out]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return not_measured_section("timed out after {} s".format(timeout), units)
        if done.returncode != 0 or not os.path.exists(out):
            lines = (done.stderr or done.stdout).strip().splitlines()
            return not_measured_section("the route's env failed: {}".format(
                lines[-1] if lines else "exit {}".format(done.returncode)), units)
        with open(out) as f:
            return json.load(f)


def main(argv=None):
    """In the route's env: measure one artifact and write the section as JSON."""
    import argparse
    import json
    from backends.builds import read_golden
    p = argparse.ArgumentParser(prog="python -m bench.macos")
    p.add_argument("--kind", required=True, choices=[EXECUTORCH, CORE_AI])
    p.add_argument("--artifact", required=True)
    p.add_argument("--protocol", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    inputs, golden = read_golden(os.path.dirname(os.path.abspath(args.artifact)))
    found = measure(RUNTIMES[args.kind](), args.artifact, inputs, golden,
                    json.loads(args.protocol))
    with open(args.out, "w") as f:
        json.dump(found, f)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
