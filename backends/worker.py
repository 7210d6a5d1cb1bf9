"""Convert one model by one route, inside that route's pinned env, in its own process.

    python -m backends.worker --route v3 --model SPEC --out DIR [--name ID]
        [--samples N] [--inputs IN.npz] [--outputs a,b] [--weights W.npz] [--hooks HOOKS.py]
        [--submodule DOTTED.PATH] [--intermediates OUT.npz] [--variant NAME]

SPEC is a zoo name, FILE.py:FUNCTION, package.module:FUNCTION, a TorchScript archive or an
ONNX file (``backends.sources``); IN.npz holds the inputs (``input:<name>``) and, for ONNX,
the golden outputs the host computed (``output:<name>``).

Writes into DIR: the model file, golden.npz, conversion.json. Exit 0 converted, 1 the route
failed (recorded in conversion.json), 2 bad input (one line on stderr, nothing recorded).

For ``coreml-routes diagnose``: ``--submodule`` converts one sub-module of the zoo model
alone, fed the inputs it really receives (captured here by running the whole model, so
nothing crosses envs but names); ``--intermediates`` also saves every intermediate value of
the graph the route captures, by name (``Backend.intermediates``). A failed conversion's
record names the op being converted when it failed (``failed_op``). Every record lists the
op names the converter looked up, with counts (``converter_ops``: what a hook can key on);
a hook key that names none of them is a ``warning:`` line on stderr. ``--variant`` builds
another precision or compressed weights (``backends.variants``) instead of the default.
A parent (backends.runner) records deaths by signal. Runs on Python 3.7.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import traceback

from backends.base import BadInput
from backends.builds import PROGRESS as PROGRESS_FILE
from backends.builds import write_record

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m backends.worker")
    p.add_argument("--route", required=True)
    p.add_argument("--model", required=True, help="zoo name, FILE.py:FUNCTION, .pt/.ts or .onnx")
    p.add_argument("--name", help="model id in records (default: the zoo name / derived)")
    p.add_argument("--out", required=True)
    p.add_argument("--samples", type=int, default=32000)
    p.add_argument("--inputs", help="npz of input:<name> arrays (models other than the zoo's)")
    p.add_argument("--outputs", help="comma-separated output names")
    p.add_argument("--weights", help="npz of the state dict (from a checkpoint, as plain arrays)")
    p.add_argument("--hooks", action="append", default=[],
                   help="python file defining HOOKS = {route: {op: fn}}; repeatable")
    p.add_argument("--submodule", help="convert only this sub-module (dotted path, '' = whole)")
    p.add_argument("--intermediates", help="also save the captured graph's intermediates here")
    p.add_argument("--variant", help="build this variant (backends.variants) instead of the default")
    p.add_argument("--steps", type=int, default=4,
                   help="a stateful model's golden: this many successive calls (default 4)")
    p.add_argument("--step-inputs", help="npz (cases layout) of one case whose inputs carry a "
                                         "leading axis of --steps: the inputs of each call")
    args = p.parse_args(argv)
    try:
        record = run(args)
    except BadInput as e:
        sys.stderr.write("error: {}\n".format(e))
        return EXIT_BAD_INPUT
    return EXIT_OK if record.ok else EXIT_FAILED


def run(args):
    import backends
    from backends import sources
    from backends.base import ConversionError, Stages
    from backends.builds import ConversionRecord, OK, write_record

    from backends import variants
    variant = getattr(args, "variant", None)
    backend = backends.get(args.route)     # each raises a BadInput of its own
    source = sources.parse(args.model)
    variants.check(backend, variant)
    not_applicable = backend.accepts(source)
    if not_applicable:
        raise BadInput("route {} is not applicable: {}".format(backend.name, not_applicable))
    os.makedirs(args.out, exist_ok=True)
    stages = Stages(os.path.join(args.out, PROGRESS_FILE))
    record = ConversionRecord(
        route=args.route, model=args.name or source.default_name,
        source={"kind": source.kind, "spec": args.model}, samples=args.samples,
        submodule=getattr(args, "submodule", None),
        weights="checkpoint" if args.weights else "seeded", artifact=backend.artifact,
        hooks=", ".join(os.path.basename(h) for h in hook_paths(args.hooks)) or None, variant=variant,
        seconds=stages.seconds)
    with stages("load_toolchain"):
        versions = backend.load_toolchain()   # before torch: import order matters for v3
    record.toolchain = dict(versions, python=platform.python_version())

    seen = None
    try:
        job = prepare_job(args, backend, source, stages)
        job.variant = variant
        record.golden_source = job.golden_source
        record.update(getattr(job, "state_facts", None) or {})
        if getattr(job, "state_facts", None) and not backend.takes_states:
            return _not_applicable(args, record, stages, backend.states_reason)
        with backend.watch_ops() as seen:
            extra = backend.convert(job, stages) or {}
        record.update(extra)
        with stages("inspect"):
            record.update(backend.inspect(os.path.join(args.out, backend.artifact)))
        if "input_shapes" not in extra:   # a route that knows no flexibility converted one shape
            record["input_shapes"] = one_shape_texts(job, backend)
        record.compute_units = backend.compute_units(record)
        record.status = OK
        if getattr(args, "intermediates", None):
            record["intermediates"] = save_intermediates(backend, job, stages, args.intermediates)
    except ConversionError as e:
        record.stage, record.error = e.stage, str(e)
        record["traceback"] = traceback.format_exc(limit=-8)
        record["failed_op"] = failed_op(e)
        if getattr(e, "zero_dims", None) is not None:   # v3: a 0-sized dimension, named
            record["zero_dims"] = e.zero_dims
    if seen is not None:
        record["converter_ops"] = dict(seen.counts)
        if not getattr(args, "submodule", None):
            warn_unused_hooks(backend, job, seen, record)
    write_record(args.out, record)
    _remove(os.path.join(args.out, PROGRESS_FILE))
    return record


def warn_unused_hooks(backend, job, seen, record):
    """A hook key that names no op the converter looked up would silently do nothing: say
    so, one line per key (the parent relays ``warning:`` lines)."""
    if not job.hooks or not seen.counts:
        return
    misses = seen.misses(job.hooks)
    if misses:
        record["hook_misses"] = misses
    for key, closest in sorted(misses.items()):   # which model: a batch's others may use it
        sys.stderr.write("warning: route {}: hook {!r} matches no op its converter sees in "
                         "model {}; closest: {}\n".format(backend.name, key, record.model,
                                                          ", ".join(closest)))


def save_intermediates(backend, job, stages, path):
    """For diagnose: PyTorch's intermediates by converter name. Its failure is no failure
    of the conversion: it is recorded apart."""
    from backends.base import ConversionError
    try:
        with stages("intermediates"):
            return backend.intermediates(job, path)
    except ConversionError as e:
        return {"error": str(e)}


def prepare_job(args, backend, source, stages):
    """Build or load the model, load weights, run PyTorch once for the golden outputs
    (an ONNX source brings the host's golden outputs instead)."""
    from backends import sources
    from backends.base import Job
    hooks = load_all_hooks(hook_paths(args.hooks), backend.name)   # a bad file fails fast
    outputs = args.outputs.split(",") if getattr(args, "outputs", None) else None
    loaded = sources.load(source, stages, args.samples, getattr(args, "inputs", None),
                          args.weights, outputs)
    module, inputs, output_names = loaded.module, loaded.inputs, loaded.output_names
    scripted, cases = loaded.scripted, loaded.cases
    if getattr(args, "submodule", None):
        from backends.builds import Case
        with stages("build"):
            module, inputs, output_names = submodule_job(module, inputs, args.submodule)
        scripted, cases = None, [Case("example", inputs, {})]
    job = Job(module, inputs, output_names, args.out, hooks, source=source, scripted=scripted)
    if not getattr(args, "submodule", None):
        job.input_shapes = input_shapes(getattr(args, "inputs", None), inputs)
    with stages("golden"):
        snap = _buffer_snapshot(module)
        job.golden_source = write_golden(job, args.out, cases)
        stateful_golden(job, args, snap, cases)
    return job


def _buffer_snapshot(module):
    if module is None:
        return None
    from backends import states
    return states.snapshot(module)


def stateful_golden(job, args, snap, cases):
    """When the golden run mutated buffers (a stateful model): golden.npz becomes one case of
    ``--steps`` successive calls from zeroed buffers (``backends.states``); the job converts
    with the first call's inputs and knows its states (``job.states``)."""
    from backends import builds, states
    if snap is None:
        return
    names = states.mutated(job.module, snap[0])
    if not names:
        return
    steps = getattr(args, "steps", None) or 4
    if steps < 1:
        raise BadInput("--steps must be at least 1, not {}".format(steps))
    if getattr(args, "step_inputs", None):
        stacked, how = builds.read_cases_file(args.step_inputs)[0].inputs, "given per call"
        if list(stacked) != list(cases[0].inputs):
            raise BadInput("the step inputs hold {}, the model takes {}".format(
                ", ".join(stacked), ", ".join(cases[0].inputs)))
        try:
            per_call = builds.split_steps(stacked, steps)
        except ValueError as e:
            raise BadInput("a stateful model's inputs carry one slice per call: {}".format(e))
    else:
        per_call, how = [cases[0].inputs] * steps, "the first case's inputs, every call"
    states.restore(job.module, snap[1], zero=names)
    runs = states.run_steps(job.module, per_call)
    states.restore(job.module, snap[1], zero=names)
    from collections import OrderedDict
    outputs = builds.stack_steps([OrderedDict(zip(job.output_names, run)) for run in runs])
    builds.write_cases(args.out, [builds.Case(states.STEPS_LABEL, builds.stack_steps(per_call),
                                              outputs)])
    job.inputs = per_call[0]
    job.states = states.describe(job.module, names)
    job.state_facts = {"steps": steps, "states": job.states, "step_inputs": how}


def _not_applicable(args, record, stages, reason):
    """The route cannot carry this model (e.g. states before iOS 18): neither ok nor failed."""
    record.status, record["reason"] = "not applicable", reason
    write_record(args.out, record)
    _remove(os.path.join(args.out, PROGRESS_FILE))
    return record


def one_shape_texts(job, backend):
    """{name: "fixed 1x1024"}; an input asked flexible says what was asked, never silently
    one shape."""
    from backends.shapes import fixed_texts, flexible
    texts = fixed_texts(job)
    for name, shape in flexible(job).items():
        texts[name] += " (asked {}: route {} converted this one shape)".format(shape.text(), backend.name)
    return texts


def input_shapes(inputs_npz, inputs):
    """{name: FlexShape} the host asked for (``builds.read_input_shapes``), or None; a
    flexible input the host names but the model does not take is the user's error."""
    from backends.builds import read_input_shapes
    shapes = read_input_shapes(inputs_npz)
    if shapes and any(name not in inputs for name in shapes):
        raise BadInput("flexible input(s) {} are not among the model's inputs {}".format(
            ", ".join(n for n in shapes if n not in inputs), ", ".join(inputs)))
    return shapes


def submodule_job(model, inputs, path):
    """The sub-module at ``path`` and the inputs it receives when the whole model runs."""
    from collections import OrderedDict
    import torch
    from backends.sources import user_module
    modules = dict(user_module(model).named_modules())   # the user's paths: "emb", not "inner.emb"
    modules[""] = model
    if path not in modules:
        raise BadInput("{} has no sub-module {!r}".format(type(model).__name__, path))
    module, seen = modules[path], []

    def capture(mod, args):
        if not seen:
            seen.append(args)
    handle = module.register_forward_pre_hook(capture)
    with torch.no_grad():
        model(*(torch.from_numpy(a) for a in inputs.values()))
    handle.remove()
    if not seen:
        raise BadInput("sub-module {} is never called".format(path))
    if not all(isinstance(a, torch.Tensor) for a in seen[0]):
        raise BadInput("sub-module {} takes non-tensor arguments: cannot convert alone".format(path))
    # Each input as the sub-module receives it, dtype included (token ids stay integers).
    sub_inputs = OrderedDict(("input_{}".format(i), a.detach().numpy()) for i, a in enumerate(seen[0]))
    with torch.no_grad():
        outputs = module(*seen[0])
    count = len(outputs) if isinstance(outputs, (tuple, list)) else 1
    return module, sub_inputs, ["output_{}".format(i) for i in range(count)]


def failed_op(error):
    """The converter's node/op being converted when it failed: the innermost traceback
    frame holding a ``node`` (onnx-coreml, the coremltools torch frontend) or an MIL ``op``
    (coremltools passes). None when no such frame exists (e.g. export failed)."""
    cause = error.__cause__ or error.__context__ or error
    tb, found = cause.__traceback__, None
    while tb is not None:
        local = tb.tb_frame.f_locals
        for key in ("node", "op"):
            described = _describe_op(local.get(key))
            if described:
                found = described
                break
        tb = tb.tb_next
    return found


def _describe_op(obj):
    if obj is None:
        return None
    kind = getattr(obj, "op_type", None) or getattr(obj, "kind", None)
    if not isinstance(kind, str):
        return None
    name = getattr(obj, "name", None)
    outputs = list(getattr(obj, "outputs", None) or [])
    if not name and outputs:
        name = outputs[0] if isinstance(outputs[0], str) else getattr(outputs[0], "name", None)
    return {"type": kind, "name": str(name) if name else None,
            "outputs": [o if isinstance(o, str) else str(getattr(o, "name", o)) for o in outputs]}


def write_golden(job, folder, cases):
    """golden.npz: every case's inputs and this env's PyTorch outputs for them (or the
    outputs the host preset, computed by onnxruntime for an ONNX file). Returns where the
    outputs came from."""
    from collections import OrderedDict
    from backends import builds
    if cases[0].outputs:
        runs, where = [list(c.outputs.values()) for c in cases], "onnxruntime (host)"
        job.output_names = job.output_names or list(cases[0].outputs)
    else:
        import torch
        runs = [_torch_outputs(job.module, case.inputs) for case in cases]
        where = "torch {} (this env)".format(torch.__version__)
        if job.output_names is None:
            job.output_names = ["output_{}".format(i) for i in range(len(runs[0]))]
    for case, outputs in zip(cases, runs):
        if len(job.output_names) != len(outputs):
            raise ValueError("the model returns {} output(s) on input {!r}, but {} name(s) were "
                             "given ({})".format(len(outputs), case.label, len(job.output_names),
                                                 ", ".join(job.output_names)))
    job.output_shapes = [tuple(o.shape) for o in runs[0]]
    builds.write_cases(folder, [builds.Case(c.label, c.inputs, OrderedDict(zip(job.output_names, o)))
                                for c, o in zip(cases, runs)])
    return where


def _torch_outputs(module, inputs):
    import torch
    with torch.no_grad():
        outputs = module(*(torch.from_numpy(a) for a in inputs.values()))
    if not isinstance(outputs, (tuple, list)):
        outputs = (outputs,)
    return [o.detach().numpy() for o in outputs]


def hook_paths(hooks):
    """--hooks as a list of files: none, one (a str, as callers used to pass it) or several."""
    if not hooks:
        return []
    return [hooks] if isinstance(hooks, str) else list(hooks)


def load_all_hooks(paths, route):
    """The hooks of several files for ``route``, merged; two files converting the same op
    would leave one silently unused, so that is bad input naming both."""
    merged, where = {}, {}
    for path in paths:
        for op, fn in (load_hooks(path, route) or {}).items():
            if op in merged:
                raise BadInput("hooks files {} and {} both convert {!r} for route {}".format(
                    where[op], path, op, route))
            merged[op], where[op] = fn, path
    return merged or None


def load_hooks(path, route):
    """A hooks file is the user's own Python: HOOKS = {"v3": {"Pad": fn}, "v4": {...}}."""
    namespace = {"__file__": path, "__name__": "coreml_routes_hooks"}
    try:
        with open(path) as f:
            code = compile(f.read(), path, "exec")
    except (IOError, OSError, SyntaxError) as e:
        raise BadInput("cannot read hooks file {}: {}".format(path, e))
    try:
        exec(code, namespace)
    except Exception as e:   # the user's code: name the file and line, as Python would
        raise BadInput("hooks file {} line {}: {}: {}".format(
            path, _line_in(path, e.__traceback__), type(e).__name__, e))
    hooks = namespace.get("HOOKS")
    if not isinstance(hooks, dict):
        raise BadInput("hooks file {} defines no HOOKS dict ({{route: {{op: function}}}})".format(path))
    return hooks.get(route) or None


def _line_in(path, tb):
    """The last line of ``path`` in a traceback: where the user's file went wrong."""
    line = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
