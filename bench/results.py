"""The benchmark's results file: ``results/<host>.json``, one per host.

Layout (schema 1)::

    {"schema": 1, "kind": "bench-host",
     "host": {"name", "os", "machine", "cpu", "python", "toolchain": {package: version}},
     "baselines": {model: {...}},        # PyTorch / onnxruntime on this host, per model
     "rows": {model: {route: row}}}      # one row per model x route

How a figure was timed is stated where it sits, never once per file (rows of one file
come from different runs): every latency block has ``runs`` and ``warmup`` (Core ML's also
``protocol``), and every measured row has ``timing``: {"reference_evaluator": {"runs",
"warmup"}, "coreml": protocol or null}. Files written before that have a top-level
``settings``, which readers ignore.

Every figure carries its unit in its name (``_seconds``, ``_bytes``, ``_db``) or beside it
(latency blocks: ``"unit": "ms"``). A cell that could not be measured is
``{"not_measured": reason}``. Several hosts sit side by side as separate files; a re-run
replaces only the rows it measured, in its own host's file, atomically.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys

from bad_input import BadInput
from backends.builds import write_text_atomic
from bench.macos import REAL_RUNTIMES

SCHEMA = 1
KIND = "bench-host"


class InjectedResultsError(BadInput):
    """Figures from an injected (fake) Core ML runtime must never reach results/."""


def host_name(override=None):
    name = override or platform.node().split(".")[0] or "host"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def host_info(name):
    return {"name": name, "os": "{} {}".format(platform.system(), platform.release()),
            "os_version": platform.mac_ver()[0] or platform.version(),
            "machine": platform.machine(), "cpu": _cpu(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "toolchain": _toolchain()}


def _cpu():
    if platform.system() == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True).stdout.strip() or platform.processor()
        except OSError:
            return platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _toolchain():
    from importlib import metadata
    versions = {}
    for package in ("torch", "coremltools", "onnxruntime", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def host_path(out_dir, host):
    return os.path.join(out_dir, "{}.json".format(host))


def read_host(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if data.get("kind") == KIND and data.get("schema") == SCHEMA else None


def merge(old, new):
    """``new`` over ``old`` for the same host: new rows and baselines replace old ones with
    the same key; rows this run did not measure stay as they were, and so does a measured
    row whose artifacts this run did not find (a "missing" row holds no new measurement)."""
    if old is None:
        return new
    merged = dict(new)
    merged["baselines"] = dict(old.get("baselines", {}), **new.get("baselines", {}))
    rows = {m: dict(routes) for m, routes in old.get("rows", {}).items()}
    for model, routes in new.get("rows", {}).items():
        kept = rows.setdefault(model, {})
        for route, row in routes.items():
            if row.get("status") == "missing" and kept.get(route, {}).get("status") not in (None, "missing"):
                continue
            kept[route] = row
    merged["rows"] = rows
    return merged


# The runtimes ``bench.macos`` measures with for real: Core ML (coremltools), ExecuTorch's
# pybindings (route et) and coreai.runtime (route coreai); None: a row measured nothing.
REAL_RUNTIME_NAMES = (None,) + tuple(r.name for r in REAL_RUNTIMES)


def injected_cells(doc):
    """(model, route) of every row measured through an injected runtime."""
    found = []
    for model, routes in doc.get("rows", {}).items():
        for route, row in routes.items():
            runtime = (row.get("coreml") or {}).get("runtime") or {}
            if runtime.get("injected", False) or runtime.get("name") not in REAL_RUNTIME_NAMES:
                found.append((model, route))
    return found


def write_host(out_dir, doc):
    """Merge ``doc`` into ``out_dir/<host>.json``; atomic: readers see the old file or the
    new one, and a failure leaves the old file as it was."""
    bad = injected_cells(doc)
    if bad:
        raise InjectedResultsError(
            "refusing to write results: {} row(s) were measured through an injected Core ML "
            "runtime, not real Core ML (e.g. {}/{})".format(len(bad), *bad[0]))
    os.makedirs(out_dir, exist_ok=True)
    path = host_path(out_dir, doc["host"]["name"])
    merged = merge(read_host(path), doc)
    write_text_atomic(path, json.dumps(merged, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def read_all(results_dir):
    """-> (host docs sorted by host name, {route: conversion results}) from ``results_dir``."""
    hosts, conversions = [], {}
    if not os.path.isdir(results_dir):
        return hosts, conversions
    for name in sorted(os.listdir(results_dir)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(results_dir, name)
        if name.startswith("conversion-"):
            try:
                with open(path) as f:
                    data = json.load(f)
                conversions[data.get("route") or name[len("conversion-"):-5]] = data
            except (OSError, ValueError) as e:
                sys.stderr.write("warning: skipping unreadable {}: {}\n".format(path, e))
            continue
        doc = read_host(path)
        if doc is not None:
            hosts.append(doc)
    hosts.sort(key=lambda d: d["host"]["name"])
    return hosts, conversions
