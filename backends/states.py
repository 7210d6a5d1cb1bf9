"""Stateful models: a ``forward`` that mutates registered buffers in place (a KV cache, a
streaming front end's past frames). Runs in every route env (Python 3.7, torch 1.4 too).

Detection is the buffers' in-place version counters (``Tensor._version``), read around the
golden run the worker does anyway: any torch has them. torch.export's graph signature
(``buffers_to_mutate``) names the same buffers where torch.export exists
(``exported_mutations``); the routes that capture with torch.export record it.

Golden for a stateful model: ``steps`` successive calls of one fresh model, every mutated
buffer zeroed first (as ``MLModel.make_state()`` starts), the inputs of call i being slice i
of the step inputs; the outputs stacked on a leading axis of length ``steps``
(``builds.stack_steps``). The module is left with those buffers zeroed, so that a toolchain
which takes a buffer's value at export as its initial state starts where Core ML does.
"""
from __future__ import annotations

from collections import OrderedDict

NEEDS_IOS18 = "states need iOS 18 (Core ML spec 9)"
STEPS_LABEL = "steps"


def buffer_versions(module):
    """{buffer name: in-place version counter}."""
    return OrderedDict((name, buf._version) for name, buf in module.named_buffers())


def snapshot(module):
    """(versions, copies) of every buffer, taken before the golden run."""
    return buffer_versions(module), OrderedDict((n, b.detach().clone()) for n, b in module.named_buffers())


def mutated(module, versions):
    """Names of the buffers whose version moved since ``versions`` (in module order)."""
    return [name for name, buf in module.named_buffers() if buf._version != versions.get(name)]


def restore(module, copies, zero=()):
    """Put the snapshot back, the buffers named in ``zero`` zeroed instead."""
    import torch
    buffers = dict(module.named_buffers())
    with torch.no_grad():
        for name, value in copies.items():
            if name in zero:
                buffers[name].zero_()
            else:
                buffers[name].copy_(value)


def describe(module, names):
    """[{"name", "shape", "dtype"}] of the mutated buffers, names without the wrapper's
    ``inner.`` prefix (``sources.FlatOutputs``)."""
    buffers = dict(module.named_buffers())
    return [{"name": _user_name(n), "shape": list(buffers[n].shape),
             "dtype": str(buffers[n].dtype).replace("torch.", "")} for n in names]


def _user_name(name):
    return name[len("inner."):] if name.startswith("inner.") else name


def run_steps(module, step_inputs):
    """[[output arrays] per step]: one call per step on the module as it is."""
    import torch
    runs = []
    with torch.no_grad():
        for inputs in step_inputs:
            outputs = module(*(torch.from_numpy(a) for a in inputs.values()))
            outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            runs.append([o.detach().numpy().copy() for o in outputs])
    return runs


def exported_mutations(program):
    """Buffer names a torch.export program mutates (its graph signature), without
    ``inner.``: what coremltools, ExecuTorch and coreai-torch turn into states."""
    signature = program.graph_signature
    return sorted(_user_name(n) for n in signature.buffers_to_mutate.values())
