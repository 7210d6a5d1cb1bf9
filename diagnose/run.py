"""Convert once (with the user's hooks), then search where the route breaks."""
from __future__ import annotations

import os
import tempfile


from backends.builds import write_json_atomic
from backends.builds import route_dir
from backends.runner import convert_isolated
from diagnose import divergence, failure, in_env


def diagnose(python, route, model, out_root, samples=32000, weights=None, hooks=None,
             precision="fp32", env=None, name=None, inputs=None, outputs=None, input_note=None):
    """Return the diagnosis dict; also written to <out_root>/<name>/<folder>/diagnosis[-fp16].json.

    ``model`` is a zoo name or another source spec; ``name``, ``inputs`` and ``outputs`` as
    for ``backends.runner.convert_isolated``. ML Program routes are diagnosed on their fp32
    variant (folder ``<route>+fp32``): a conversion bug shows against PyTorch's float32,
    where the routes' default fp16 program would blur every op (and renames its values);
    ``precision="fp16"`` emulates the device."""
    import backends
    from backends.sources import parse
    name = name or parse(model).default_name
    backend = backends.get(route)
    variant = variant_for(backend, precision)
    job = dict(name=name, inputs=inputs, outputs=outputs, variant=variant)
    with tempfile.TemporaryDirectory(prefix="coreml-routes-diagnose-") as scratch:
        # Routes the host cannot run search in their own env, after the conversion.
        extra = ["--intermediates", os.path.join(scratch, "reference.npz")] \
            if backend.runs_in_host else []
        record = convert_isolated(python, route, model, out_root, samples, weights=weights,
                                  hooks=hooks, env=env, extra_args=extra, **job)
        result = {"schema": 1, "model": name, "route": route, "variant": variant,
                  "precision": precision,
                  "samples": samples, "hooks": hooks, "input": input_note,
                  "conversion": dict((k, record.get(k)) for k in
                                     ("status", "stage", "error", "failed_op"))}
        if record["status"] != "ok":
            result.update(conversion_failure(python, route, model, samples, weights, hooks,
                                             env, scratch, record, job))
        elif not backend.runs_in_host:
            from backends.builds import read_golden
            folder = route_dir(out_root, name, route, variant)
            golden = read_golden(folder)[1]
            result.update(in_env.diagnose_in_env(python, route, model, folder, golden, samples,
                                                 weights, hooks, outputs, precision, env))
        else:
            folder = route_dir(out_root, name, route, variant)
            result.update(diagnose_in_host(folder, record, precision))
    filename = "diagnosis.json" if precision == "fp32" else "diagnosis-{}.json".format(precision)
    folder = route_dir(out_root, name, route, variant)
    os.makedirs(folder, exist_ok=True)
    result["file"] = os.path.join(folder, filename)
    write_json_atomic(result["file"], result)
    return result


def variant_for(backend, precision):
    """The variant diagnosed: ML Program routes their fp32 variant (a conversion bug shows
    against PyTorch's float32; the default fp16 program would blur every op); a route whose
    default is fp32 and that builds an fp16 program (coreai) that program for
    ``precision="fp16"``, else its default."""
    if precision == "fp16" and "fp16" in backend.variants:
        return "fp16"
    return "fp32" if "fp32" in backend.variants else None


def conversion_failure(python, route, model, samples, weights, hooks, env, scratch, record, job):
    module = module_tree(model, samples, job["inputs"], weights)
    if module is None:       # an ONNX file, or a model this host's torch cannot build
        return {"verdict": "conversion failed", "module": {"path": "(whole model)", "type": None},
                "failed_op": record.get("failed_op"), "stage": record.get("stage"),
                "error": record.get("error"), "attempts": []}
    attempt = failure.attempt_in_env(python, route, model, samples, weights, hooks, env, scratch,
                                     job)
    path, sub, sub_record, attempts = failure.smallest_failing(module, record, attempt)
    found = {"verdict": "conversion failed",
             "module": {"path": path or "(whole model)", "type": type(sub).__name__},
             "failed_op": sub_record.get("failed_op"), "stage": sub_record.get("stage"),
             "error": sub_record.get("error"), "attempts": attempts}
    if path and sub_record.get("error") != record.get("error"):
        # Alone it fails, but not as the whole model did: a lead, not the proven cause.
        found["reproduces"] = False
        found["whole_model_error"] = record.get("error")
    return found


def module_tree(model, samples, inputs, weights):
    """The model as this host's torch builds it: only its tree is used (each attempt
    rebuilds it in the route's env), so the same module paths name the same parts."""
    from backends import sources
    from backends.base import Untimed
    source = sources.parse(model)
    if source.kind == sources.ONNX:
        return None
    try:
        return sources.user_module(sources.load(source, Untimed(), samples, inputs, weights).module)
    except Exception:  # noqa: BLE001 — the user's model may not build on this torch
        return None


def diagnose_in_host(folder, record, precision):
    """The diagnosis fields for a converted ``folder`` whose artifact the host's evaluator
    runs, layer by layer."""
    from backends.builds import read_golden
    from coreml_reference import load
    model_path = os.path.join(folder, record["artifact"])
    spec = load(model_path).spec
    inputs, outputs = read_golden(folder)
    traced = divergence.run_traced(model_path, inputs, "fp32")
    if precision == "fp16":
        fp16 = divergence.run_traced(model_path, inputs, "fp16")
        found = {"outputs": divergence.output_errors(fp16.outputs or fp16.values, outputs, "fp16"),
                 "evaluator_stopped": divergence.stopped_at(spec, fp16)}
        found["layer"] = divergence.first_fp16_problem(spec, fp16, traced)
        found["verdict"] = found["layer"]["problem"] if found["layer"] else (
            "evaluator stopped" if fp16.error else "fp16 within tolerance")
        return found
    found = {"outputs": divergence.output_errors(traced.outputs or traced.values, outputs),
             "evaluator_stopped": divergence.stopped_at(spec, traced)}
    reference = divergence.load_reference(record.get("intermediates"), inputs, outputs)
    found["reference"] = reference.source
    found["layer"], found["counts"] = divergence.first_divergence(spec, traced, reference)
    found["compared"], found["traced"] = found["counts"]["compared"], found["counts"]["traced"]
    found["verdict"] = verdict(found, traced.error)
    return found


def verdict(found, error):
    """The fp32 verdict. A value that departs while every output matches is a name the
    converter reused for something else, not a fault: moved to a note, never the verdict."""
    outputs_ok = error is None and all(o.get("agree") for o in found["outputs"].values())
    if outputs_ok:
        if found.get("layer"):
            found["departs_yet_outputs_match"] = found["layer"]
        found["layer"] = None
        return "matches"
    if found.get("layer"):
        return "diverges"
    if error is not None:
        return "evaluator stopped"
    return "diverges (no matched layer departs)"
