"""coreai: torch.export -> coreai-torch 0.4.3 -> Core AI asset (.aimodel), Apple, 2026.

The default artifact is what coreai-torch gives users: the program keeps the exported
program's dtypes, so a float32 module becomes a float32 program. coreai-torch has no
precision option (``TorchConverter`` takes only a debug-info mode); a program's precision is
the dtype of the module it is given. Variant ``fp16`` is therefore what Apple's own export
scripts (apple/coreai-models, ``--dtype float16``) do for devices: the module and its float
inputs cast to float16 before ``torch.export``.

Checked on Linux by Apple's own Core AI interpreter (coreai-core), not by our evaluator:
``run_artifact`` runs the asset as typed. Specialization for CPU / GPU / Neural Engine
exists only on macOS 27+, so which unit runs which op is decided there, not here.
Hooks: qualified ATen op name (``aten::relu.default``, as coreai-torch looks lowerings up)
-> ``fn(values_map, node, loc)`` returning Core AI values, registered with coreai-torch's
``register_torch_lowering(name, allow_override=True)``. ``converter_ops`` counts those names
in the exported program.
"""
from __future__ import annotations

import os

import contextlib
import difflib

from backends.base import Backend, ConversionError, NotEmulated, OpsSeen
from backends.sources import ONNX, TORCHSCRIPT

PLACEMENT = ("decided when the asset is specialized on the device (macOS / iOS 27+): "
             "coreai-core offers CPU, GPU and Neural Engine compute unit kinds; no placement "
             "rules are published for Linux to reproduce")


class CoreAI(Backend):
    name = "coreai"
    order = 60
    min_os = "iOS27"      # Core AI ships with iOS / macOS 27
    env = "coreai"
    python = "3.11"
    artifact = "model.aimodel"
    summary = "torch.export -> coreai-torch 0.4.3 (Apple Core AI .aimodel, program typed as the module)"
    runtime = "Core AI"
    runs_in_host = False
    hook_kind = "ATen op (aten::<op>.<overload>) -> Core AI lowering (register_torch_lowering)"
    variants = ("fp16",)
    takes_states = True   # Core AI states (the exported program's mutated buffers)
    _seen = None

    def accepts(self, source):
        if source.kind == ONNX:
            return "coreai-torch converts torch.export programs of a PyTorch module, not ONNX files"
        if source.kind == TORCHSCRIPT:
            return ("a TorchScript archive has no Python module for torch.export, which "
                    "coreai-torch converts from: give the model's Python code instead")
        return None

    def load_toolchain(self):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # "validated with torch<=2.13.0"
            import coreai
            import coreai_torch
            import torch
        return {"coreai-torch": coreai_torch.__version__, "coreai-core": _core_version(coreai),
                "torch": torch.__version__}

    def capture(self, job):
        """The torch.export program coreai-torch converts, decomposed by its own table
        (the module in float16 for variant fp16)."""
        import torch
        from coreai_torch import get_decomp_table
        module, args = job.module, job.torch_inputs()
        from backends.shapes import export_dims
        if job.variant == "fp16":
            module, args = _as_half(module, args)
        program = torch.export.export(module, args, dynamic_shapes=export_dims(job))
        return program.run_decompositions(get_decomp_table())

    def convert(self, job, stages):
        from pathlib import Path
        from coreai_torch import TorchConverter
        with stages("export"):
            try:
                program = self.capture(job)
            except Exception as e:   # torch's reason is its first line; advice follows
                raise ConversionError("export", _first_line(e))
        ops = exported_ops(program)
        if self._seen is not None:
            self._seen.counts.update(ops)
        with stages("convert"):
            try:
                converter = TorchConverter(mode=TorchConverter.Mode.RELEASE)
                # A key naming no op of this program could do nothing (the worker warns of
                # it); coreai-torch would also refuse one not of the form namespace::op.
                for name, fn in sorted((job.hooks or {}).items()):
                    if name in ops:
                        converter.register_torch_lowering(name, allow_override=True)(fn)
                converter.add_exported_program(program, input_names=list(job.inputs),
                                               output_names=list(job.output_names))
                ai_program = converter.to_coreai()
            except Exception as e:   # the converter's reason, whole: its messages span lines
                raise ConversionError("convert", _reason(e))
        with stages("save"):
            ai_program.save_asset(Path(os.path.join(job.out_dir, self.artifact)))
        return dict(input_shapes_facts(job), converter_mode="release")

    @contextlib.contextmanager
    def watch_ops(self):
        self._seen = seen = LoweringsSeen()
        try:
            yield seen
        finally:
            self._seen = None

    def inspect(self, path):
        from backends.coreai_program import facts
        out = facts(path)
        out["compute_precision"] = out["program_precision"]
        out["compute_unit_placement"] = PLACEMENT
        return out

    def compute_units(self, record):
        """Every kind coreai-core can specialize for; which one runs what is decided on the
        device (``compute_unit_placement`` in the record says so)."""
        return ["CPU", "GPU", "NE"]

    def run_artifact(self, path, record, inputs, precision="fp32"):
        from backends.coreai_program import run
        typed = record.get("compute_precision") or record.get("program_precision")
        if precision == "fp16" and typed != "fp16":
            raise NotEmulated(
                "Core AI's Linux interpreter runs the program as typed ({}); what a GPU or "
                "Neural Engine specialization computes in is decided on macOS 27+, which this "
                "host cannot run".format(typed or "type unknown"))
        # fp32 asked of an fp16-typed program, or fp16 of one: the interpreter runs it as typed.
        return run(path, inputs)

    def run_artifact_steps(self, path, record, inputs, steps, precision="fp32"):
        """Successive calls with one Core AI state (zeroed here: the interpreter's own state
        buffers are not zeroed on Linux)."""
        from backends.builds import split_steps, stack_steps
        from backends.coreai_program import run_steps
        if precision == "fp16" and (record.get("compute_precision") or
                                    record.get("program_precision")) != "fp16":
            return self.run_artifact(path, record, inputs, precision)   # raises NotEmulated
        return stack_steps(run_steps(path, split_steps(inputs, steps)))


def input_shapes_facts(job):
    """How each input converted: a torch.export Dim becomes a dynamic dim of the program.
    Core AI has no enumeration: an enumerated dim converts as the range from its smallest to
    its largest size. The program keeps no bounds (the asset's input descriptor says -1)."""
    from backends.shapes import FlexShape, asked_texts, flexible
    texts, notes = asked_texts(job), {}
    for name, shape in flexible(job).items():
        if shape.kind == "enumerated":
            spanned = FlexShape([d if isinstance(d, int) else (min(d), max(d)) for d in shape.dims])
            texts[name] = spanned.text()
            notes[name] = ("asked {}: Core AI takes torch.export's Dim, which has no enumeration; "
                           "converted as a range".format(shape.text()))
        else:
            notes[name] = ("the program declares the flexible dims as dynamic (-1) without "
                           "torch.export's bounds")
    facts = {"input_shapes": dict(texts)}
    if notes:
        facts["input_shapes_notes"] = notes
    return facts


class LoweringsSeen(OpsSeen):
    """Qualified ATen names; a hook key is also matched against their bare op names
    (``Reluu`` is closest to ``aten::relu.default`` by its ``relu``)."""

    def misses(self, keys):
        bare = {}
        for name in sorted(self.counts):
            bare.setdefault(name.split("::")[-1].split(".")[0].lower(), name)
        found = {}
        for key in keys:
            if key in self.counts:
                continue
            wanted = key.split("::")[-1].split(".")[0].lower()
            close = difflib.get_close_matches(wanted, list(bare), n=3, cutoff=0.5)
            found[key] = [bare[c] for c in close] or sorted(self.counts)[:3]
        return found


def exported_ops(program):
    """Counter of the names coreai-torch looks lowerings up by (``aten::relu.default``)."""
    from collections import Counter
    counts = Counter()
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        target = node.target
        name = target.__name__ if callable(target) else str(target)
        namespace = getattr(target, "namespace", None) if callable(target) else None
        counts["{}::{}".format(namespace, name) if namespace else name] += 1
    return counts


def _as_half(module, args):
    import copy
    import torch
    half = copy.deepcopy(module).to(torch.float16)
    return half, tuple(a.to(torch.float16) if a.is_floating_point() else a for a in args)


def _reason(error):
    """The converter's message on one line (coreai-torch's span several: the ops, then advice)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return "{}: {}".format(type(error).__name__, text or repr(error))


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "{}: {}".format(type(error).__name__, lines[0] if lines else repr(error))


def _core_version(coreai):
    try:
        from importlib.metadata import version
        return version("coreai-core")
    except Exception:   # noqa: BLE001 — a version string is a nicety
        return getattr(coreai, "__version__", "unknown")


BACKEND = CoreAI()
