"""``--out DIR`` checked before any work: an existing file (or a file where a parent folder
should be) is the user's mistake, one line, rather than a traceback after the conversions."""
from __future__ import annotations

import os

from coreml_routes.errors import UserError


def checked_out_root(path, flag="--out"):
    """The absolute output root; UserError when it, or the nearest part of it that exists,
    is not a folder, or that folder is not writable."""
    root = os.path.abspath(path)
    existing = root
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        if existing == root:
            raise UserError("{} {}: is a file, not a folder (give a folder, new or existing)"
                            .format(flag, path))
        raise UserError("{} {}: {} is a file, so no folder can be made under it".format(
            flag, path, existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError("{} {}: folder {} is not writable".format(flag, path, existing))
    return root
