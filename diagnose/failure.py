"""Find the smallest sub-module that a route still fails to convert (see ``diagnose``)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from backends.base import BadInput
from backends.runner import convert_isolated

PARALLEL = min(4, os.cpu_count() or 1)   # each attempt is its own converter process


def smallest_failing(module, whole_record, attempt):
    """Walk ``module``'s tree from the root; return (path, module, record, attempts).

    ``attempt(path)`` converts the sub-module at ``path`` alone and returns its conversion
    record, or None when it cannot run alone (e.g. it takes non-tensor arguments)."""
    path, current, record = "", module, whole_record
    attempts = []
    while True:
        children = [(_join(path, name), child) for name, child in current.named_children()]
        if not children:
            break
        with ThreadPoolExecutor(PARALLEL) as pool:
            records = list(pool.map(attempt, [p for p, _ in children]))
        for (child_path, child), child_record in zip(children, records):
            attempts.append({"module": child_path, "type": type(child).__name__,
                             "status": child_record["status"] if child_record else "not alone",
                             "error": child_record and child_record.get("error")})
        failing = [(p, c, r) for (p, c), r in zip(children, records)
                   if r is not None and r["status"] != "ok"]
        if not failing:
            break   # every child converts alone: the fault is in this module's own code
        # Prefer the child that fails the way its parent does: that is the same fault.
        same = [f for f in failing if f[2].get("error") == record.get("error")]
        path, current, record = (same or failing)[0]
    return path, current, record, attempts


def attempt_in_env(python, route, model, samples, weights, hooks, env, scratch, job=None):
    """``attempt`` for ``smallest_failing``: one worker process per sub-module. ``job``:
    name, inputs and outputs of a model other than the zoo's."""
    def attempt(path):
        out_root = os.path.join(scratch, "sub-" + (path or "root").replace(".", "_"))
        try:
            return convert_isolated(python, route, model, out_root, samples, weights=weights,
                                    hooks=hooks, env=env, extra_args=["--submodule", path],
                                    **(job or {}))
        except BadInput:
            return None
    return attempt


def _join(prefix, name):
    return prefix + "." + name if prefix else name
