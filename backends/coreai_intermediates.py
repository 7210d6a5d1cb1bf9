"""Per-op values of Core AI's Linux interpreter against PyTorch's: the first divergent op.

For a later ``coreml-routes diagnose --route coreai``; runs in the coreai env.

    report = compare_with_torch(module, {"x": array}, ["y"])
    report["first_divergent"]   # {"node": "relu", "target": "aten::relu.default", ...} or None

How: the module is exported and decomposed as the route does, then converted by coreai-torch
in DEBUG mode: only DEBUG mode records which Core AI op computes which torch node's value
(``coreai_torch.debugging.torch_utils.get_torch_to_coreai_output_mapping``; a RELEASE
conversion, what the route ships, has no such mapping). The lowering is the same in both
modes. PyTorch's values come from coreai-torch's ``TorchFXInspector`` (the decomposed
program run node by node), the interpreter's from ``CoreAIInspector`` over
``coreai.runtime.IntermediateLogger``. coreai-core loads a model with debug info only
through macOS specialization options; on Linux this module lowers the asset itself with
debug info on (``AIModelAsset._write_odix(..., enable_debug_info=True)``, private, the call
``AIModelAsset.executable()`` makes on Linux with debug info off) and loads that.
Each mapped value is held to ``coreml_reference.metrics``' tolerance for the program's
precision, in the exported graph's order. Core AI's optimizer folds ops (PANNs: each batch
norm into the conv before it), and the value logged for the conv is then conv + norm: such
a value that matches a later node of its single-user chain is reported under ``fused``,
not as a divergence (on PANNs MobileNetV1: 65 ops compared, none divergent; without this
rule the first conv before a batch norm read as diverging at 9.5 dB).
"""
from __future__ import annotations

from collections import OrderedDict


def compare_with_torch(module, inputs, output_names, hooks=None, variant=None):
    """{"ops": [{"node", "target", "coreai_op", "shape", "snr_db", "max_abs_error",
    "within_tolerance"}], "first_divergent": that dict or None, "unmapped": [node names with
    no Core AI value to compare], "fused": {node: the Core AI op whose kernel absorbed it, or
    the later node whose value it computes once Core AI's optimizer folded that node into it
    (a batch norm into the conv before it): not compared}, "precision": tolerance used}."""
    import asyncio
    import tempfile
    import warnings
    from pathlib import Path

    import numpy as np
    import torch
    from coreai_torch import TorchConverter
    from coreai_torch.debugging.torch_utils import get_torch_to_coreai_output_mapping

    from backends.base import Job
    from backends.routes.coreai import BACKEND, exported_ops

    inputs = OrderedDict(inputs)
    job = Job(module, inputs, list(output_names), None, hooks)
    job.variant = variant
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = BACKEND.capture(job)
        ops = exported_ops(program)
        converter = TorchConverter(mode=TorchConverter.Mode.DEBUG)
        for name, fn in sorted((hooks or {}).items()):
            if name in ops:
                converter.register_torch_lowering(name, allow_override=True)(fn)
        converter.add_exported_program(program, input_names=list(inputs),
                                       output_names=list(output_names))
        ai_program = converter.to_coreai()
    mapping = get_torch_to_coreai_output_mapping(ai_program)
    args = job.torch_inputs()
    if variant == "fp16":
        args = tuple(a.to(torch.float16) if a.is_floating_point() else a for a in args)
    with tempfile.TemporaryDirectory(prefix="coreai-intermediates-") as tmp:
        asset = ai_program.save_asset(Path(tmp) / "model.aimodel")
        torch_values, coreai_values, fused = asyncio.run(_capture(
            program, args, asset, mapping, inputs, Path(tmp) / "odix"))
    return _compare(program, mapping, torch_values, coreai_values, fused,
                    "fp16" if variant == "fp16" else "fp32", np)


async def _capture(program, args, asset, mapping, inputs, odix_dir):
    import numpy as np
    from coreai.runtime import AIModel
    from coreai_torch.debugging.inspector import CoreAIInspector, TorchFXInspector
    names = [n.name for n in program.graph.nodes if n.op == "call_function"]
    torch_values = await TorchFXInspector(program).get_intermediates_for_ops(names, args)
    odix_dir.mkdir()
    asset._write_odix(odix_dir, enable_debug_info=True)  # noqa: SLF001 — see module docstring
    model = await AIModel.load(str(odix_dir))
    inspector = CoreAIInspector(model=model, function_name="main")
    ids = sorted(set(m.target_op_id for m in mapping.values()))
    desc = model.load_function("main").desc     # inputs cast to the declared types, as
    typed = dict((name, np.ascontiguousarray(np.asarray(inputs[name]).astype(   # run_artifact
        np.dtype(desc.input_descriptor(name).dtype)))) for name in desc.input_names)
    coreai_values = await inspector.get_intermediates_for_ops(ids, typed)
    # Ops the lowering fused into one kernel: only the group's last op has its own value;
    # the value logged for the others is the kernel's output (e.g. a conv with the batch
    # norm after it folded in), so they are not compared.
    fused = {}
    for members in inspector._coreai_ids_by_compile_id().values():  # noqa: SLF001
        if len(members) > 1:
            for op_id in members:
                if op_id != max(members):
                    fused[op_id] = max(members)
    return torch_values, coreai_values, fused


def _compare(program, mapping, torch_values, coreai_values, fused, precision, np):
    from coreml_reference import metrics
    from backends.routes.coreai import exported_ops
    report = {"ops": [], "first_divergent": None, "unmapped": [], "fused": {},
              "precision": precision}
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        link = mapping.get(node.name)
        if link is not None and link.target_op_id in fused:
            report["fused"][node.name] = fused[link.target_op_id]
            continue
        expected = _pick(torch_values.get(node.name), link.source_output if link else 0)
        got = _pick(coreai_values.get(link.target_op_id), link.target_output) if link else None
        if link is None or expected is None or got is None:
            report["unmapped"].append(node.name)
            continue
        expected = np.asarray(expected, np.float64)
        got = np.asarray(got, np.float64)
        if got.shape != expected.shape and got.size == expected.size:
            got = got.reshape(expected.shape)
        if got.shape != expected.shape:
            report["unmapped"].append(node.name)
            continue
        target = next(iter(exported_ops(_OneNode(node))))
        entry = {"node": node.name, "target": target, "coreai_op": link.target_op_id,
                 "shape": list(expected.shape),
                 "snr_db": _finite(metrics.snr_db(got, expected)),
                 "max_abs_error": _finite(metrics.max_abs_error(got, expected)),
                 "within_tolerance": bool(metrics.within_tolerance(got, expected, precision))}
        if not entry["within_tolerance"]:
            later = _folded_into(node, got, torch_values, precision, np, metrics)
            if later is not None:
                # Core AI's optimizer rewrote this op to compute a later one too (a batch
                # norm folded into the conv before it): its value is that op's.
                report["fused"][node.name] = later
                continue
        report["ops"].append(entry)
        if not entry["within_tolerance"] and report["first_divergent"] is None:
            report["first_divergent"] = entry
    return report


def _folded_into(node, got, torch_values, precision, np, metrics, steps=3):
    """The name of a later node in ``node``'s single-user chain whose PyTorch value ``got``
    matches, or None."""
    for _ in range(steps):
        users = [u for u in node.users if u.op == "call_function"]
        if len(users) != 1:
            return None
        node = users[0]
        value = _pick(torch_values.get(node.name), 0)
        if value is not None and np.shape(value) == got.shape and \
                metrics.within_tolerance(got, np.asarray(value, np.float64), precision):
            return node.name
    return None


class _OneNode(object):
    """A one-node view for ``exported_ops`` (the name coreai-torch looks lowerings up by)."""

    def __init__(self, node):
        self.graph = self
        self.nodes = [node]


def _pick(values, index):
    if values is None:
        return None
    if isinstance(values, (list, tuple)):
        return values[index] if index < len(values) else None
    return values if index == 0 else None


def _finite(x):
    """None for inf (an exact match: no error) and NaN, which JSON cannot hold."""
    return None if x != x or x in (float("inf"), float("-inf")) else float(x)
