"""One benchmark run: every model x route in build/ (with the route's variants found
there, ``<route>+<variant>``), into results/<host>.json."""
from __future__ import annotations

import os
import time

from backends import builds
from bench import accuracy, artifacts, latency, macos, results, static
from bench.macos import not_measured
from bench.stats import MODELBENCH

ORT_ROUTE = "v3"   # the route that keeps an ONNX file


def run_bench(models, routes, build_dir, out_dir, repeat=20, warmup=3, reference_repeat=20,
              host=None, runtime=None, progress=True, write=True, protocol=MODELBENCH):
    """Measure and (when ``write``) merge each row into ``out_dir/<host>.json`` as soon as it
    is done, so an interrupted run keeps what it finished. Returns this run's document.

    Each row records how it was timed (``row["timing"]``): runs differ (``--repeat``), and
    a re-run of one model must not relabel the rows it did not measure.

    runtime: a ``bench.macos.CoreMLRuntime``; default real Core ML on macOS, none elsewhere.
    protocol: how Core ML predictions are timed (``bench.stats.MODELBENCH``)."""
    from tqdm import tqdm
    artifacts.require_any(build_dir, models, routes)
    if runtime is None and macos.is_macos():
        runtime = macos.CoreMLToolsRuntime()
    name = results.host_name(host)
    doc = {"schema": results.SCHEMA, "kind": results.KIND, "host": results.host_info(name),
           "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "baselines": {}, "rows": {}}
    names = {model: artifact_names(build_dir, model, routes) for model in models}
    bar = tqdm(total=sum(len(n) + 1 for n in names.values()), unit="step", disable=not progress)
    try:
        for model in models:
            bar.set_postfix_str("{} / PyTorch + onnxruntime".format(model))
            doc["baselines"][model] = baselines(model, build_dir, routes, repeat, warmup)
            bar.update()
            if write:
                results.write_host(out_dir, doc)
            for route in names[model]:
                bar.set_postfix_str("{} / {}".format(model, route))
                row = measure_row(model, route, build_dir, repeat, warmup, reference_repeat, runtime,
                                  protocol)
                doc["rows"].setdefault(model, {})[route] = row
                bar.update()
                if write:
                    results.write_host(out_dir, doc)
    finally:
        bar.close()
    return doc


def artifact_names(build_dir, model, routes):
    """Each requested route (reported even when missing) followed by the variants of it that
    build_dir holds; a name with a variant (``v9+lut4``) stands for itself only."""
    names = []
    for route in routes:
        if route not in names:
            names.append(route)
        if "+" not in route:
            names += [n for n in artifacts.variants(build_dir, model, route) if n not in names]
    return names


def baselines(model, build_dir, routes, repeat, warmup):
    """PyTorch facts and host latency for one model, on the golden input of any route."""
    import torch
    import zoo
    if model in zoo.MODELS:
        entry = zoo.get(model)
        inputs = _any_golden_inputs(build_dir, model, routes) or entry.example_inputs()
        inputs = {k: inputs[k] for k in entry.inputs}   # forward takes them in this order
        module = entry.build()
        out = {"input_shapes": {k: list(v.shape) for k, v in inputs.items()}, "weights": "seeded"}
        out.update(static.pytorch_facts(module, tuple(torch.from_numpy(v) for v in inputs.values())))
        out["pytorch_cpu"] = _cell(lambda: latency.pytorch_cpu(module, inputs, repeat, warmup))
    else:
        # Your own model's code is not run in this process (it could crash the bench).
        out = {"pytorch_cpu": not_measured("PyTorch baselines are measured for zoo models; "
                                           "{} is your own".format(model))}
    onnx = artifacts.locate(build_dir, model, ORT_ROUTE)
    if not onnx.usable:
        out["onnxruntime_cpu"] = not_measured("no ONNX file: {} route {}".format(ORT_ROUTE, onnx.reason))
    else:
        onnx_path = os.path.join(onnx.folder, onnx.record.get("onnx_file") or "model.onnx")
        onnx_inputs, onnx_golden = builds.read_golden(onnx.folder)
        out["onnxruntime_cpu"] = _cell(lambda: latency.onnxruntime_cpu(
            onnx_path, onnx_inputs, repeat, warmup, golden=onnx_golden), "onnxruntime")
    return out


def measure_row(model, route, build_dir, repeat, warmup, reference_repeat, runtime,
                protocol=MODELBENCH):
    art = artifacts.locate(build_dir, model, route)
    row = {"model": model, "route": route, "conversion": artifacts.conversion_summary(art.record)}
    if not art.usable:
        row.update(status="missing" if not art.record else "failed", reason=art.reason)
        return row
    record = art.record
    row.update(status="ok", reason=None)
    inputs, golden = builds.read_golden(art.folder)
    facts = {"file_bytes": record.get("file_bytes"), "spec_type": record.get("spec_type"),
             "layer_count": record.get("layer_count"), "op_count": record.get("op_count"),
             "compute_precision": record.get("compute_precision"),
             "compute_units": artifacts.compute_units(record)}
    spec = _cell(lambda: static.artifact_facts(art.model_path, record), "spec")
    facts.update(spec if "not_measured" not in spec else
                 {"parameters": spec, "weight_precision": spec})
    row["static"] = facts
    # golden.npz's first case (the example input); the stress tone has its own column
    runner = route_runner(route)   # None: the host's evaluator opens the artifact itself
    row["reference"] = {p: accuracy.reference_accuracy(art.model_path, inputs, golden, p, runner)
                        for p in ("fp32", "fp16")}
    stress = _cell(lambda: accuracy.full_scale_case(model, record, inputs), "stress input")
    row["reference"]["fp16_full_scale"] = stress if "not_measured" in stress else dict(
        accuracy.reference_accuracy(art.model_path, stress["inputs"], stress["golden"], "fp16",
                                    runner),
        input=accuracy.STRESS_NAME)
    if "not_measured" in row["reference"]["fp32"]:   # it would fail the same way again
        row["reference"]["latency"] = row["reference"]["fp32"]
    elif runner is not None:
        row["reference"]["latency"] = not_measured(
            "not timed: it runs in route {}'s env ({}), inputs and outputs passed through "
            "files: their transfer would be timed too".format(runner.route, runner.label))
    else:
        row["reference"]["latency"] = _cell(lambda: latency.reference_evaluator(
            art.model_path, inputs, reference_repeat, warmup), "reference evaluator")
    kind = runtime_kind(route)
    if kind == macos.CORE_ML:
        row["coreml"] = macos.not_measured_section() if runtime is None else \
            macos.measure(runtime, art.model_path, inputs, golden, protocol)
    else:   # ExecuTorch (et) and Core AI (coreai): their own runtimes, in their routes' envs
        row["coreml"] = macos.section(kind, art.model_path, inputs, golden, protocol,
                                      runtime=runtime, env_python=route_python(route))
    measured = row["coreml"].get("runtime") is not None
    row["timing"] = {"reference_evaluator": {"runs": reference_repeat, "warmup": warmup},
                     "coreml": dict(protocol) if measured else None}
    return row


def runtime_kind(route):
    """What runs the artifact of ``route`` (``v9+lut4`` included) on a device: Backend.runtime."""
    import backends
    return backends.get(builds.split_folder_name(route)[0]).runtime


def route_python(route):
    """The Python of the route's env (as ``pipeline.envs`` finds it: the override variable,
    else .tox/<env>), or None when it is absent."""
    import backends
    backend = backends.get(builds.split_folder_name(route)[0])
    given = os.environ.get("COREML_ROUTES_PYTHON_" + backend.env.upper().replace("-", "_"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    python = given or os.path.join(root, ".tox", backend.env, "bin", "python")
    return python if os.path.exists(python) else None


# What runs a route's artifact on a host without its device runtime (Backend.runtime -> words).
LINUX_RUNNERS = {macos.EXECUTORCH: "ExecuTorch program, partitions by the evaluator",
                 macos.CORE_AI: "Core AI interpreter"}


class RouteEnvMissing(RuntimeError):
    """The route's env (``route_python``) is not on this host."""


class RouteRunner(object):
    """``runner(path, inputs, precision)`` for ``bench.accuracy``: the artifact run by its
    route's own Linux runtime (``Backend.run_artifact``) in that route's env (``route_python``)."""

    def __init__(self, route, python, label):
        self.route, self.python, self.label = route, python, label
        self.served = None          # one serving child for every cell (EnvRunner)

    def __call__(self, path, inputs, precision):
        from backends.artifact_run import EnvRunner
        if self.python is None:
            raise RouteEnvMissing("route {}'s env has no Python here (run `tox -e {}`)".format(
                self.route, self.route))
        if self.served is None:
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env = dict(os.environ, PYTHONPATH=root)   # our packages first, as pipeline.envs does
            env.pop("PYTHONHOME", None)
            self.served = EnvRunner(self.python, self.route, env=env)
        return self.served(os.path.abspath(path), inputs, precision)


def route_runner(route):
    """A ``RouteRunner`` for a route whose artifact the host's evaluator cannot open (et's
    .pte, coreai's .aimodel); None for Core ML models."""
    import backends
    backend = backends.get(builds.split_folder_name(route)[0])
    if backend.runs_in_host:
        return None
    return RouteRunner(backend.name, route_python(route),
                       LINUX_RUNNERS.get(backend.runtime, "route {}'s runtime".format(backend.name)))


def _any_golden_inputs(build_dir, model, routes):
    import backends
    for route in list(routes) + [r for r in backends.all_routes() if r not in routes]:
        folder = os.path.join(build_dir, model, route)
        if os.path.isfile(builds.golden_path(folder)):
            return builds.read_golden(folder)[0]
    return None


def _cell(fn, what=None):
    try:
        return fn()
    except Exception as e:   # noqa: BLE001 — one failing measurement must not stop the run
        return not_measured("{}{}: {}".format(what + ": " if what else "", type(e).__name__, e))
