"""Turn what the user passes (path, spec, MLModel) into a spec plus its weights folder."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from coreml_reference.errors import ModelFileError


@dataclass
class LoadedModel:
    spec: object                 # Model_pb2.Model
    path: Optional[str]          # file the spec came from, for error messages
    weights_dir: Optional[str]   # ML Program: folder holding weight.bin files

    @property
    def name(self):
        return self.path or "<in-memory spec>"


def load(model) -> LoadedModel:
    from coreml_reference import proto
    if isinstance(model, LoadedModel):       # already parsed: keep its decoded-weight caches
        return model
    if isinstance(model, proto.Model()):
        return LoadedModel(model, None, None)
    if hasattr(model, "get_spec") and not isinstance(model, (str, os.PathLike)):
        weights_dir = getattr(model, "weights_dir", None)
        path = getattr(model, "package_path", None)
        return LoadedModel(model.get_spec(), path, weights_dir)
    return load_path(os.fspath(model))


def load_path(path: str) -> LoadedModel:
    from coreml_reference import proto
    if not os.path.exists(path):
        raise ModelFileError("model file not found: {}".format(path))
    weights_dir = None
    spec_path = path
    if os.path.isdir(path):
        spec_path, weights_dir = _package_paths(path)
    spec = proto.Model()()
    try:
        with open(spec_path, "rb") as f:
            data = f.read()
        spec.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError, or RuntimeWarning-like errors
        raise ModelFileError("{} is not a readable Core ML model (truncated or corrupt?): {}".format(
            path, e))
    if not data or spec.WhichOneof("Type") is None:
        raise ModelFileError("{} is not a readable Core ML model: empty or no model type".format(path))
    return LoadedModel(spec, path, weights_dir)


def _package_paths(package: str):
    """Locate model.mlmodel and the weights folder inside an .mlpackage (per its Manifest)."""
    import json
    manifest_path = os.path.join(package, "Manifest.json")
    data_dir = os.path.join(package, "Data", "com.apple.CoreML")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        root = manifest["rootModelIdentifier"]
        spec_rel = manifest["itemInfoEntries"][root]["path"]
        spec_path = os.path.join(package, "Data", spec_rel)
    except (OSError, ValueError, KeyError) as e:
        raise ModelFileError("{} is not a valid .mlpackage (bad Manifest.json: {})".format(package, e))
    if not os.path.exists(spec_path):
        raise ModelFileError("{}: model spec {} is missing".format(package, spec_path))
    return spec_path, os.path.join(data_dir, "weights")
