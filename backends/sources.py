"""What a conversion starts from: a zoo name, the user's factory, a TorchScript archive or an
ONNX file — and how each becomes the module, inputs and golden outputs of a ``Job``.

    pann_mobilenetv1            a zoo model (``zoo.MODELS``)
    my_model.py:build           ``build()`` in that file returns an nn.Module
    mypackage.models:build      the same, from an importable module
    model.pt / model.ts         a TorchScript archive (``torch.jit.save``)
    model.onnx                  an ONNX file (route v3 only)

``parse`` is plain string logic shared by the host CLI and the route envs; ``load`` runs
inside a route env (or the host's reference run), on that env's torch. Runs on Python 3.7.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections import OrderedDict

from bad_input import BadInput

ZOO, FACTORY, TORCHSCRIPT, ONNX = "zoo", "factory", "torchscript", "onnx"
TORCHSCRIPT_SUFFIXES = (".pt", ".ts")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class SourceError(BadInput):
    """The model spec itself is malformed (the user's request, not a route's failure)."""


class Source(object):
    def __init__(self, kind, spec, path=None, function=None):
        self.kind = kind          # ZOO, FACTORY, TORCHSCRIPT or ONNX
        self.spec = spec          # as written by the user
        self.path = path          # file or dotted module (FACTORY), file (TORCHSCRIPT, ONNX)
        self.function = function  # FACTORY only

    @property
    def default_name(self):
        """A model id for build/<id>/: the zoo name, ``file-function``, or the file's stem."""
        if self.kind == ZOO:
            return self.spec
        if self.kind == FACTORY:
            stem = self.path.rsplit(".", 1)[0] if self.path.endswith(".py") else self.path
            return "{}-{}".format(os.path.basename(stem).split(".")[-1], self.function)
        return os.path.splitext(os.path.basename(self.path))[0]


def parse(spec):
    """The Source a ``--model`` value names (no file is opened here)."""
    lower = spec.lower()
    if lower.endswith(".onnx"):
        return Source(ONNX, spec, path=spec)
    if lower.endswith(TORCHSCRIPT_SUFFIXES):
        return Source(TORCHSCRIPT, spec, path=spec)
    if ":" in spec:
        where, function = spec.rsplit(":", 1)
        if not _IDENTIFIER.match(function):
            raise SourceError("--model {!r}: {!r} is not a function name (expected FILE.py:FUNCTION "
                              "or package.module:FUNCTION)".format(spec, function))
        if not where.endswith(".py") and not _DOTTED.match(where):
            raise SourceError("--model {!r}: {!r} is neither a .py file nor a dotted module name"
                              .format(spec, where))
        return Source(FACTORY, spec, path=where, function=function)
    return Source(ZOO, spec)


class Loaded(object):
    """A model ready for a Job: the module to convert and the cases it is checked on."""

    def __init__(self, module, cases, output_names, scripted=None):
        self.module = module              # nn.Module in eval mode (None for ONNX)
        self.cases = cases                # [builds.Case]: inputs (+ preset outputs for ONNX)
        self.output_names = output_names  # names of the outputs, in order
        self.scripted = scripted          # a TorchScript module routes may convert as it is

    @property
    def inputs(self):
        """The first case's inputs: what the routes convert with."""
        return self.cases[0].inputs

    @property
    def golden(self):
        """Preset golden outputs of the first case (ONNX: onnxruntime's), or None."""
        return self.cases[0].outputs or None


def load(source, stages, samples=32000, inputs_npz=None, weights_npz=None, output_names=None):
    """Build ``source`` on this env's torch, under the stages ``build`` (factory, zoo) or
    ``load`` (archives); a failure there is the route's, recorded by the caller.
    ``inputs_npz``: the cases (``builds.write_cases_file``) the host prepared."""
    import numpy as np
    from backends.builds import read_cases_file
    cases = read_cases_file(inputs_npz) if inputs_npz else []
    weights = None
    if weights_npz:
        with np.load(weights_npz, allow_pickle=False) as arrays:
            weights = dict(arrays.items())
    if source.kind == ZOO:
        return _load_zoo(source, stages, samples, weights, cases)
    if not cases:
        raise BadInput("{} needs its inputs (an inputs file from the host)".format(source.spec))
    if source.kind == ONNX:
        with stages("load"):
            if not os.path.isfile(source.path):
                raise IOError("ONNX file not found: {}".format(source.path))
        names = output_names or list(cases[0].outputs)
        return Loaded(None, cases, names)
    if source.kind == TORCHSCRIPT:
        with stages("load"):
            import torch
            scripted = torch.jit.load(source.path, map_location="cpu").eval()
            if weights is not None:
                _load_strict(scripted, weights, source.path)
        return Loaded(FlatOutputs(scripted), cases, output_names, scripted=scripted)
    with stages("build"):
        module = _build_factory(source)
        if weights is not None:
            _load_strict(module, weights, source.spec)
    return Loaded(FlatOutputs(module), cases, output_names)


def _load_zoo(source, stages, samples, weights, cases=None):
    """The zoo entry, fed ``cases`` when given (e.g. a stress input), else its own
    (``zoo.Entry.example_cases``)."""
    import zoo
    entry = zoo.get(source.spec)          # ZooError is BadInput: passes through stages
    entry.check_samples(samples)
    with stages("build"):
        module = entry.build()
        if weights is not None:
            zoo.load_weights(module, weights, where="checkpoint")
    from backends.builds import Case
    for case in cases or []:
        if list(case.inputs) != list(entry.inputs):
            raise BadInput("{} takes inputs {}, got {}".format(
                entry.name, ", ".join(entry.inputs), ", ".join(case.inputs)))
    cases = cases or [Case(label, OrderedDict((k, inputs[k]) for k in entry.inputs), OrderedDict())
                      for label, inputs in entry.example_cases(samples).items()]
    return Loaded(module, cases, list(entry.outputs))


def _build_factory(source):
    """Import the user's file or module and call its factory, seeded so that every route
    without shared weights still builds the same initial weights where torch allows."""
    import torch
    import torch.nn as nn
    if source.path.endswith(".py"):
        path = os.path.abspath(source.path)
        if not os.path.isfile(path):
            raise IOError("model file not found: {}".format(source.path))
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)    # the user's sibling modules import as in their project
        spec = importlib.util.spec_from_file_location(
            "coreml_routes_user_" + re.sub(r"\W", "_", os.path.basename(path)[:-3]), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(source.path)
    factory = getattr(module, source.function, None)
    if not callable(factory):
        raise AttributeError("{} has no function {}".format(source.path, source.function))
    torch.manual_seed(0)
    model = factory()
    if not isinstance(model, nn.Module):
        raise TypeError("{}() returned a {}, not an nn.Module".format(
            source.function, type(model).__name__))
    return model.eval()


def _load_strict(module, arrays, where):
    """The state dict as plain arrays, loaded strictly: same keys, same shapes."""
    import torch
    state = module.state_dict()
    missing = sorted(set(state) - set(arrays))
    extra = sorted(set(arrays) - set(state))
    if missing or extra:
        raise KeyError("checkpoint does not fit {}: {} missing key(s){}, {} unexpected key(s){}".format(
            where, len(missing), " e.g. " + missing[0] if missing else "",
            len(extra), " e.g. " + extra[0] if extra else ""))
    for key, tensor in state.items():
        if tuple(arrays[key].shape) != tuple(tensor.shape):
            raise ValueError("checkpoint: {} has shape {}, the model expects {}".format(
                key, tuple(arrays[key].shape), tuple(tensor.shape)))
    with torch.no_grad():
        for key, tensor in state.items():
            tensor.copy_(torch.from_numpy(arrays[key].copy()))


def flatten_outputs(value):
    """Tensors of a (nested) tuple / list / dict output, in order: what the routes see."""
    if isinstance(value, dict):
        return [t for k in value for t in flatten_outputs(value[k])]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flatten_outputs(v)]
    return [value]


def _flat_module_class():
    import torch.nn as nn

    class FlatOutputs(nn.Module):
        """Returns the wrapped module's outputs as a flat tuple of tensors, the form every
        route's capture (trace, export, onnx) accepts."""

        def __init__(self, inner):
            super(FlatOutputs, self).__init__()
            self.inner = inner

        def forward(self, *inputs):
            return tuple(flatten_outputs(self.inner(*inputs)))

    return FlatOutputs


def user_module(module):
    """The user's own module inside a ``FlatOutputs`` wrapper (its module paths are theirs)."""
    return module.inner if type(module).__name__ == "FlatOutputs" else module


def FlatOutputs(inner):
    """Wrap ``inner``; its state dict keys gain the prefix ``inner.``: use ``inner`` for weights."""
    return _flat_module_class()(inner)
