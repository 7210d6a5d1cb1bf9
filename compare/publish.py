"""Where a compare document goes: ``compare.json`` / ``compare.md``, unless that would
replace a recommendation an earlier run wrote with a run that recommends nothing.

A run that recommends a route writes ``compare.json`` and ``compare.md`` (and removes a
``compare.failed.*`` pair left by an earlier failed run: it is no longer the latest word).
A run that recommends nothing writes them too when there is no earlier recommendation to
keep; when ``compare.json`` already recommends a route, the new result goes beside it as
``compare.failed.json`` / ``compare.failed.md`` and the earlier pair stays as it was.
"""
from __future__ import annotations

import json
import os

from backends.builds import write_json_atomic
from compare.table import markdown

MAIN, FAILED = "compare", "compare.failed"


def publish(folder, doc):
    """Write ``doc`` into ``folder``; return (json path written, note or None): the note
    says that an earlier recommendation was kept and where this run's result went."""
    os.makedirs(folder, exist_ok=True)
    earlier = earlier_recommendation(folder)
    if not doc.get("recommended") and earlier:
        stem = FAILED
        note = ("kept {} and compare.md: they recommend {} (an earlier run); this run "
                "recommends nothing, its result is in {}.json and {}.md".format(
                    os.path.join(folder, MAIN + ".json"), earlier, FAILED, FAILED))
    else:
        stem, note = MAIN, None
        for ext in (".json", ".md"):   # an earlier failed run's result is no longer the latest
            _remove(os.path.join(folder, FAILED + ext))
    path = os.path.join(folder, stem + ".json")
    write_json_atomic(path, doc)
    _write_text_atomic(os.path.join(folder, stem + ".md"), markdown(doc))
    return path, note


def earlier_recommendation(folder):
    """The route a compare.json already in ``folder`` recommends, or None (none there,
    unreadable, or it recommends nothing)."""
    try:
        with open(os.path.join(folder, MAIN + ".json")) as f:
            return json.load(f).get("recommended")
    except (OSError, ValueError, AttributeError):
        return None


def _write_text_atomic(path, text):
    tmp = path + ".tmp-{}".format(os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass
