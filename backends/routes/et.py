"""et: torch.export -> ExecuTorch 1.5.1 with its Core ML delegate -> .pte.

``to_edge_transform_and_lower`` with ``CoreMLPartitioner()`` — what an ExecuTorch user gets
by default: no compile specs, so each Core ML partition is an fp16-typed ML Program
(coremltools' default), compute units ALL, no deployment target. Ops the partitioner leaves
out stay in the program and run on ExecuTorch's CPU kernels on a device.

The route folder holds ``model.pte``, every Core ML partition unpacked as
``partitions/<i>.mlpackage`` (the order of the program's Core ML delegate calls) and
``executorch.json`` (the user's input and output names, which a .pte does not keep).
On Linux the .pte cannot run (ExecuTorch's pip wheel registers no Core ML backend there):
``run_artifact`` walks the program's own instructions, torch running the kernels left outside
Core ML and ``coreml_reference`` answering each delegate call from the unpacked partition
(``backends.executorch_program``).

Variants: ``fp32`` (``compute_precision=FLOAT32``) and ``lin8`` (the compile spec
``op_linear_quantizer_config``: int8 per-channel weights, gathers excepted, as ExecuTorch
applies it). ExecuTorch's Core ML compile specs offer no palettization or pruning, so lut4,
lut6 and prune50 are not offered.
Hooks: ATen op -> MIL composite (``register_torch_op``), as for v9-export: the partitions are
converted by coremltools' torch frontend. The partitioner asks that registry which ops Core
ML supports, but its own deny-list wins (acosh, asinh, diagonal, rand, argmax/argmin over
all axes, add/sub with alpha != 1): a hook cannot bring those into a partition.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections import Counter

from backends.base import Backend, BadInput
from backends.builds import PARTITIONS
from backends.sources import ONNX, TORCHSCRIPT

SIDECAR = "executorch.json"
# Compile spec op_linear_quantizer_config for lin8: coremltools' OpLinearQuantizerConfig
# fields, the same weights as route v9's lin8.
LIN8 = {"mode": "linear_symmetric", "dtype": "int8", "granularity": "per_channel"}
CPU_FALLBACK = "ops outside Core ML run on ExecuTorch's CPU kernels (never on the GPU or Neural Engine)"


class ET(Backend):
    name = "et"
    order = 50
    env = "et"
    python = "3.11"
    artifact = "model.pte"
    takes_states = True   # the Core ML partitioner's mutable-buffer takeover (iOS 18 states)
    runtime = "ExecuTorch + Core ML"
    runs_in_host = False
    summary = "torch.export -> ExecuTorch 1.5.1 + Core ML delegate (.pte; fp16 partitions by default)"
    hook_kind = "torch.export (ATen) op -> MIL composite (register_torch_op), per Core ML partition"
    variants = ("fp32", "lin8")

    def accepts(self, source):
        if source.kind == ONNX:
            return "an ONNX file has no PyTorch module for torch.export: use route v3"
        if source.kind == TORCHSCRIPT:
            return "a TorchScript archive has no Python module for torch.export: use route v9"
        return None

    def load_toolchain(self):
        import coremltools
        import torch
        from executorch import version
        return {"executorch": version.__version__, "coremltools": coremltools.__version__,
                "torch": torch.__version__}

    def compile_specs(self, variant):
        """None (the partitioner's defaults) for the default artifact; else the specs."""
        if variant is None:
            return None
        import coremltools as ct
        from executorch.backends.apple.coreml.compiler import CoreMLBackend
        if variant == "fp32":
            return CoreMLBackend.generate_compile_specs(compute_precision=ct.precision.FLOAT32)
        if variant == "lin8":
            return CoreMLBackend.generate_compile_specs(op_linear_quantizer_config=dict(LIN8))
        raise BadInput("route et cannot build variant {!r}".format(variant))

    def state_specs(self, job):
        """A stateful job's compile specs: the partitioner takes mutable buffers over by
        default (``take_over_mutable_buffer``), as Core ML states, which need iOS 18."""
        if not getattr(job, "states", None):
            return None
        import coremltools as ct
        from executorch.backends.apple.coreml.compiler import CoreMLBackend
        precision = ct.precision.FLOAT32 if job.variant == "fp32" else ct.precision.FLOAT16
        return CoreMLBackend.generate_compile_specs(compute_precision=precision,
                                                    minimum_deployment_target=ct.target.iOS18)

    def lower(self, job, stages):
        """torch.export, then the Core ML partitions lowered: the edge program manager."""
        import torch
        from backends.shapes import export_dims
        from backends.torch_common import register_hooks
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner
        from executorch.exir import to_edge_transform_and_lower
        with stages("export"):
            exported = torch.export.export(job.module, job.torch_inputs(),
                                           dynamic_shapes=export_dims(job))
        with stages("convert"):
            register_hooks(job.hooks)
            specs = self.state_specs(job) or self.compile_specs(job.variant)
            enumerated = enumerated_shapes(job, exported)
            if enumerated:   # ExecuTorch's own compile spec: ct.EnumeratedShapes per partition input
                from executorch.backends.apple.coreml.compiler import CoreMLBackend
                specs = list(specs or CoreMLBackend.generate_compile_specs()) + [
                    CoreMLBackend.generate_enumerated_shapes_compile_spec(exported, enumerated)]
            # ExecuTorch takes enumerated shapes only for a graph lowered whole to Core ML.
            partitioner = CoreMLPartitioner(compile_specs=specs, lower_full_graph=bool(enumerated))
            return to_edge_transform_and_lower(exported, partitioner=[partitioner])

    def convert(self, job, stages):
        edge = self.lower(job, stages)
        with stages("convert"):
            counts = lowered_op_counts(edge.exported_program().graph_module)
        with stages("save"):
            buffer = edge.to_executorch().buffer
            with open(os.path.join(job.out_dir, self.artifact), "wb") as f:
                f.write(buffer)
            partitions = save_partitions(buffer, job.out_dir)
            sidecar = {"schema": 1, "inputs": list(job.inputs), "outputs": list(job.output_names),
                       "partitions": partitions}
            with open(os.path.join(job.out_dir, SIDECAR), "w") as f:
                json.dump(sidecar, f, indent=2)
        precisions = [partition_precision(os.path.join(job.out_dir, p)) for p in partitions]
        from backends.shapes import asked_texts
        return {"executorch": counts, "input_shapes": dict(asked_texts(job)),
                "compute_precision": overall_precision(precisions),
                "partitions": partitions,
                "cpu_fallback_ops": dict(counts["not_delegated"]),
                "cpu_fallback": CPU_FALLBACK if counts["not_delegated"] else None,
                "compile_specs": "default (CoreMLPartitioner())" if job.variant is None
                else {"fp32": "compute_precision=FLOAT32",
                      "lin8": "op_linear_quantizer_config=" + json.dumps(LIN8)}[job.variant]}

    def inspect(self, path):
        from backends.executorch_program import forward_plan, instruction_ops, io_tensors, read
        from backends.inspect_spec import summarize
        plan = forward_plan(read(path))
        sidecar = read_sidecar(os.path.dirname(path))
        ops = instruction_ops(plan)
        inputs = io_tensors(plan, plan.inputs)
        outputs = io_tensors(plan, plan.outputs)
        for facts, names in ((inputs, sidecar.get("inputs")), (outputs, sidecar.get("outputs"))):
            for i, fact in enumerate(facts):
                fact["name"] = names[i] if names and i < len(names) else "value_{}".format(i)
        parts = []
        for relative in sidecar.get("partitions", []):
            spec = summarize(os.path.join(os.path.dirname(path), relative))
            spec["file"] = relative
            spec["compute_precision"] = partition_precision(os.path.join(os.path.dirname(path), relative))
            parts.append(spec)
        return {"spec_type": "executorch", "file_bytes": os.path.getsize(path),
                "op_types": dict(ops), "op_count": int(sum(ops.values())),
                "inputs": inputs, "outputs": outputs, "partition_specs": parts}

    def compute_units(self, record):
        """Core ML's rules for the partitions (an fp32-typed partition bars the Neural
        Engine); ops outside Core ML run on the CPU whatever is chosen (``cpu_fallback_ops``)."""
        from backends.variants import compute_units
        precision = record.get("compute_precision")
        return compute_units("mlProgram", "fp16" if precision == "fp16" else "fp32")

    def run_artifact_steps(self, path, record, inputs, steps, precision="fp32"):
        """Successive calls of one program: each stateful Core ML partition keeps its state
        from call to call (ExecuTorch holds one MLState per delegate)."""
        from backends.builds import split_steps, stack_steps
        states = {}
        return stack_steps([self.run_artifact(path, record, call, precision, _states=states)
                            for call in split_steps(inputs, steps)])

    def run_artifact(self, path, record, inputs, precision="fp32", _states=None):
        """The whole program on this host: the .pte's own instructions, its Core ML delegate
        calls answered by coreml_reference on the unpacked partitions (``precision`` "fp16"
        emulates GPU / Neural Engine arithmetic there), the kernels outside Core ML by torch
        (fp32, as ExecuTorch's CPU kernels). A .pte converted elsewhere (no executorch.json
        beside it) takes ``inputs`` in the order given, names its outputs output_<i> and has
        its partitions unpacked into a temporary folder."""
        from backends import executorch_program
        if not os.path.isfile(path):
            raise BadInput("{}: no such file".format(path))
        folder = os.path.dirname(os.path.abspath(path))
        sidecar = read_sidecar(folder)
        names_in = sidecar.get("inputs") or [f["name"] for f in (record or {}).get("inputs", [])]
        names_out = sidecar.get("outputs") or [f["name"] for f in (record or {}).get("outputs", [])]
        names_in = names_in or list(inputs)
        missing = [n for n in names_in if n not in inputs]
        if missing:
            raise BadInput("input {!r} is missing (the model takes: {})".format(
                missing[0], ", ".join(names_in)))
        program = executorch_program.read(path)
        partitions = [os.path.join(folder, p) for p in sidecar.get("partitions", [])]
        with contextlib.ExitStack() as stack:
            if not sidecar:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="et-run-"))
                with open(path, "rb") as f:
                    partitions = [os.path.join(tmp, p) for p in save_partitions(f.read(), tmp)]
            outputs = executorch_program.run(program, [inputs[n] for n in names_in],
                                             partition_runner(partitions, precision, _states))
        names_out = names_out or ["output_{}".format(i) for i in range(len(outputs))]
        return dict(zip(names_out, outputs))

    def watch_ops(self):
        from backends.torch_common import watch_frontend
        return watch_frontend()


# --- conversion-side helpers (et env) ---------------------------------------------------------

def enumerated_shapes(job, exported):
    """ExecuTorch's enumerated-shapes compile spec input: {placeholder name: [shapes]} for
    the inputs asked enumerated (the exported program names its inputs itself)."""
    from backends.shapes import flexible
    flex = flexible(job)
    if not any(s.kind == "enumerated" for s in flex.values()):
        return None
    names = list(exported.graph_signature.user_inputs)
    return dict((names[i], [list(s) for s in flex[n].enumerated()])
                for i, n in enumerate(job.inputs) if n in flex and flex[n].kind == "enumerated")


def lowered_op_counts(graph_module):
    """The executorch block of the record: Core ML partitions, ops inside them, all ops, and
    the ops left outside by name (edge dialect, e.g. ``aten.acosh.default``)."""
    delegated, outside, partitions = 0, Counter(), 0
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or _is_getitem(node):
            continue
        if _name(node.target) == "executorch_call_delegate":
            partitions += 1
            lowered = getattr(graph_module, node.args[0].target)
            delegated += sum(1 for n in lowered.original_module.graph_module.graph.nodes
                             if n.op == "call_function" and not _is_getitem(n))
        else:
            outside[_name(node.target)] += 1
    return {"partitions": partitions, "delegated_ops": delegated,
            "total_ops": delegated + int(sum(outside.values())), "not_delegated": dict(outside)}


def _is_getitem(node):
    import operator
    return node.target is operator.getitem


def _name(target):
    name = getattr(target, "__name__", None) or str(target)
    return name.replace("aten_", "aten.") if name.startswith("aten_") else name


def save_partitions(buffer, out_dir):
    """Unpack every Core ML partition of the .pte bytes into ``out_dir/partitions/<i>.mlpackage``
    (ExecuTorch's extract_coreml_models into a temp dir, then moved); return the relative paths."""
    from executorch.examples.apple.coreml.scripts.extract_coreml_models import extract_coreml_models
    target = os.path.join(out_dir, PARTITIONS)
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.makedirs(target)
    found = []
    with tempfile.TemporaryDirectory(prefix="et-partitions-") as tmp:
        with contextlib.redirect_stdout(io.StringIO()):     # it prints a line per partition
            folders = extract_coreml_models(buffer, tmp)
        for i, folder in enumerate(folders):
            package = os.path.join(str(folder), "lowered_module", "model.mlpackage")
            if not os.path.isdir(package):
                raise RuntimeError("partition {} unpacked without a model.mlpackage".format(i))
            relative = os.path.join(PARTITIONS, "{}.mlpackage".format(i))
            shutil.move(package, os.path.join(out_dir, relative))
            found.append(relative)
    return found


def partition_precision(path):
    """"fp16" / "fp32" / "mixed": the float type the partition's ops compute in (fp16 when its
    ops produce float16, as coremltools' default FLOAT16 precision types them)."""
    import coremltools
    from coremltools.proto import MIL_pb2
    spec = coremltools.utils.load_spec(path)
    kinds = set()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type in ("const", "cast"):     # fp16 programs cast at their edges
                    continue
                for output in op.outputs:
                    if output.type.WhichOneof("type") != "tensorType":
                        continue
                    dtype = output.type.tensorType.dataType
                    if dtype == MIL_pb2.FLOAT16:
                        kinds.add("fp16")
                    elif dtype == MIL_pb2.FLOAT32:
                        kinds.add("fp32")
    return overall_precision(sorted(kinds))


def overall_precision(kinds):
    kinds = set(k for k in kinds if k)
    if not kinds:
        return None
    if len(kinds) == 1:
        return kinds.pop()
    return "mixed"


def partition_runner(paths, precision, states=None):
    """call_partition for ``executorch_program.run``: the delegate's arguments fed to the
    partition's inputs in its description's order (ExecuTorch's Core ML runtime maps them so),
    its outputs returned in that order; each model parsed once. ``states``: a dict that keeps
    each stateful partition's Core ML state across calls (successive calls of one program)."""
    import coreml_reference
    models = {}

    def call_partition(index, args):
        if index >= len(paths):
            raise BadInput("the program calls Core ML partition {} but only {} were unpacked".format(
                index, len(paths)))
        if index not in models:
            models[index] = coreml_reference.load(paths[index])
        description = models[index].spec.description
        names = [f.name for f in description.input]
        state = None
        if states is not None:
            if index not in states:
                states[index] = coreml_reference.new_state(models[index])
            state = states[index]
        result = coreml_reference.predict(models[index], dict(zip(names, args[:len(names)])),
                                          precision=precision, state=state)
        return [result[f.name] for f in description.output]
    return call_partition


def read_sidecar(folder):
    try:
        with open(os.path.join(folder, SIDECAR)) as f:
            return json.load(f)
    except (IOError, OSError, ValueError):
        return {}


BACKEND = ET()
