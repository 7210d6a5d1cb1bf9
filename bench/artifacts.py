"""Find one model x route's artifacts in build/ and say why when they cannot be used.

An artifact is named by its folder: a route (``v9``, the route's default) or a route's
variant (``v9+lut4``, see ``backends.variants``). ``variants(build_dir, model)`` lists them."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional


from bad_input import BadInput
from backends import builds
from backends.builds import split_folder_name as split


@dataclass
class Artifact:
    model: str
    route: str
    folder: str
    record: dict = field(default_factory=dict)   # conversion.json (empty when missing)
    model_path: Optional[str] = None
    reason: Optional[str] = None                 # why it cannot be benchmarked; None when usable

    @property
    def usable(self):
        return self.reason is None

    @property
    def variant(self):
        """The variant this artifact is (``lut4`` for ``v9+lut4``), None for a route's default."""
        return split(self.route)[1]


def variants(build_dir, model, route=None):
    """Artifact names of ``model`` in ``build_dir``: each route's default then its variants,
    routes in registry order (v3, v4, v9, v9-export), variants in ``backends.variants``
    order; e.g. ["v3", "v3+lut4", "v9", "v9+fp32", "v9+lin8"]. ``route``: only that route's.
    Only folders holding a conversion record count (a converted or a failed run)."""
    import backends
    from backends.variants import SUMMARIES
    folder = os.path.join(build_dir, model)
    try:
        names = [n for n in os.listdir(folder) if not n.startswith(".")
                 and os.path.isfile(builds.record_path(os.path.join(folder, n)))]
    except OSError:
        return []
    routes, kinds = list(backends.all_routes()), list(SUMMARIES)

    def order(name):
        r, v = split(name)
        return (routes.index(r) if r in routes else len(routes), r,
                -1 if v is None else kinds.index(v) if v in kinds else len(kinds), v or "")
    return sorted((n for n in names if route is None or split(n)[0] == route), key=order)


class NoBuild(BadInput):
    """Not one of the requested model x route folders holds a conversion record."""


def require_any(build_dir, models, routes):
    """Raise NoBuild unless some requested model x route has ``conversion.json`` in
    ``build_dir``: a bench that finds nothing at all was pointed at the wrong place."""
    for model in models:
        for route in routes:
            if os.path.isfile(builds.record_path(os.path.join(build_dir, model, route))):
                return
    where = "{} does not exist".format(build_dir) if not os.path.isdir(build_dir) else \
        "no <model>/<route>/conversion.json in {} for {} x {}".format(
            build_dir, ", ".join(models), ", ".join(routes))
    raise NoBuild("no build found: {} (convert first, or pass --build DIR)".format(where))


def locate(build_dir, model, route):
    folder = os.path.join(build_dir, model, route)
    art = Artifact(model, route, folder)
    if not os.path.isfile(builds.record_path(folder)):
        art.reason = "missing: no {} in {} (not converted yet?)".format(builds.RECORD, folder)
        return art
    try:
        art.record = builds.load_record(folder)
    except (OSError, ValueError) as e:
        art.reason = "unreadable {}: {}".format(builds.RECORD, e)
        return art
    if art.record.get("status") != "ok":
        art.reason = "conversion failed at stage {}: {}".format(
            art.record.get("stage") or "?", art.record.get("error") or "no error recorded")
        return art
    path = os.path.join(folder, art.record.get("artifact") or "")
    if not art.record.get("artifact") or not os.path.exists(path):
        art.reason = "missing: conversion.json says ok but {} is not there".format(path)
        return art
    if not os.path.isfile(builds.golden_path(folder)):
        art.reason = "missing: no {} in {}".format(builds.GOLDEN, folder)
        return art
    art.model_path = path
    return art


CONVERTER_STAGES = ("export", "trace", "load", "convert", "compress", "save")


def converter_seconds(record):
    """Seconds of converter work in a record (None without timings): building the model,
    loading the toolchain and the golden run are the same on every route and would hide
    the differences."""
    seconds = record.get("seconds") or {}
    return round(sum(v for k, v in seconds.items() if k in CONVERTER_STAGES), 4) if seconds else None


def conversion_summary(record):
    """The conversion facts a results row repeats, so a row reads on its own."""
    return {"status": record.get("status", "missing"), "stage": record.get("stage"),
            "error": record.get("error"), "seconds": converter_seconds(record),
            "toolchain": record.get("toolchain"), "variant": record.get("variant"),
            "compute_units": compute_units(record)}


def compute_units(record):
    """Compute units Core ML may run the artifact on (Apple's typed-execution rules), from
    its record; records written before variants existed are read the same way."""
    from backends.variants import compute_units as rule
    if record.get("compute_units"):
        return record["compute_units"]
    if not record.get("spec_type"):
        return None
    return rule(record["spec_type"], record.get("compute_precision"))
