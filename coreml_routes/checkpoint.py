"""Read an untrusted PANNs checkpoint safely and hand its tensors on as plain arrays.

Only torch >= 1.13's ``weights_only=True`` unpickler is used (never full pickle), here in
the 3.11 host; the old-torch route envs receive an ``.npz`` with ``allow_pickle=False``.
"""
from __future__ import annotations

import numpy as np

from coreml_routes.errors import UserError


def _numpy_globals():
    """What PANNs' training checkpoints need besides tensors: numpy arrays in ``sampler``
    (pickled by numpy 1.x under the old module path)."""
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    allowed = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
               (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
               (multiarray.scalar, "numpy.core.multiarray.scalar")]
    allowed += [type(np.dtype(t)) for t in ("f4", "f8", "i4", "i8", "u1", "b1")]
    return allowed


EXPECTED = ("a file written by torch.save holding a state dict, {'state_dict': ...} or "
            "{'model': ...} (as PANNs' checkpoints)")


def load_state_arrays(path: str) -> dict:
    """{parameter name: numpy array} from a state dict, ``{'state_dict': ...}`` or
    ``{'model': ...}`` (PANNs' checkpoints; training-script extras beside it are ignored)."""
    import torch
    _check_format(path)
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError("checkpoint not found: {}".format(path))
    except IsADirectoryError:
        raise UserError("checkpoint {} is a directory, not a file".format(path))
    except Exception as e:  # corrupt zip, truncated pickle, refused global, ...
        raise UserError("cannot read checkpoint {}: {}".format(path, _reason(e)))
    state = None
    if isinstance(data, dict):
        wrapper = [k for k in ("model", "state_dict") if k in data]
        state = data[wrapper[0]] if wrapper else data
    if not isinstance(state, dict) or not state:
        raise UserError("checkpoint {} holds no state dict; expected {}".format(path, EXPECTED))
    arrays = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise UserError("checkpoint {}: entry {!r} is a {}, not a tensor".format(
                path, key, type(value).__name__))
        arrays[key] = value.detach().cpu().numpy()
    return arrays


def _check_format(path: str) -> None:
    """torch.save writes a zip archive (torch >= 1.6) or a pickle (protocol 2, older torch):
    anything else is named for what it is not, with what is expected."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise UserError("checkpoint not found: {}".format(path))
    except IsADirectoryError:
        raise UserError("checkpoint {} is a directory, not a file".format(path))
    except OSError as e:
        raise UserError("cannot read checkpoint {}: {}".format(path, e.strerror or e))
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return
    what = "a text file" if _is_text(head) else "empty" if not head else None
    raise UserError("checkpoint {} is not a PyTorch checkpoint ({}neither a torch.save zip archive "
                    "nor a torch pickle); expected {}".format(
                        path, what + ", " if what else "", EXPECTED))


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(text) and all(c.isprintable() or c.isspace() for c in text)


def _reason(error: Exception) -> str:
    """One line out of torch's multi-paragraph load errors."""
    message = str(error)
    refused = [line.strip() for line in message.splitlines() if "GLOBAL" in line]
    if refused:
        return "it holds objects other than tensors and arrays, refused for safety ({})".format(
            refused[0].split(" was not")[0].split(" whose module")[0])
    if "WeightsUnpickler error:" in message:
        message = message.split("WeightsUnpickler error:")[1]
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return "not a PyTorch checkpoint, or corrupt ({})".format(lines[0] if lines else type(error).__name__)


def save_npz(arrays: dict, path: str) -> None:
    np.savez(path, **arrays)
