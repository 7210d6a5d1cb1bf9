"""Route v3's two fixes in one hooks file: the Pad fix and the Log fix.

    coreml-routes convert --route v3 --model pann_mobilenetv1 --hooks examples/hooks_v3.py

``tox -e v3`` converts the zoo with this file. It loads ``hooks_pad.py`` (constantPad
amounts per axis) and ``hooks_log.py`` (unary LOG with epsilon 1e-45, not 1e-6) from its own
folder and merges their ``HOOKS``; each stays usable alone. An op converted by both files
is an error here rather than one fix silently replacing the other.
"""
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _hooks_of(filename):
    path = os.path.join(_HERE, filename)
    namespace = {"__file__": path, "__name__": "coreml_routes_hooks_" + filename[:-3]}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), namespace)
    return namespace["HOOKS"]


HOOKS = {}
for _filename in ("hooks_pad.py", "hooks_log.py"):
    for _route, _ops in _hooks_of(_filename).items():
        _merged = HOOKS.setdefault(_route, {})
        for _op, _fn in _ops.items():
            if _op in _merged:
                raise ValueError("{} converts {!r} for route {} a second time".format(
                    _filename, _op, _route))
            _merged[_op] = _fn
