"""Flexible input shapes: one input's shape with range dims ``LO..HI`` and / or enumerated
dims ``A,B,C`` (several enumerated dims enumerate their product), as ``--input`` gives it.

The host turns a flexible input into cases (``case_shapes``: one point inside each range and
both its ends; every enumerated shape), each run by PyTorch; the routes receive the shapes
too (``builds.write_input_shapes`` beside the inputs file) and convert the flexibility their
toolchain's way: ``ct_shape`` (coremltools RangeDim / EnumeratedShapes), ``export_dims``
(torch.export.Dim), ``onnx_dynamic_axes``. Each record says per input how it ended up, in
the words of ``text``: ``fixed 1x1024`` / ``range 1..16 x 1024`` / ``enumerated {1,8,16} x
1024``. Runs on Python 3.7 (the v3 worker imports it).
"""
from __future__ import annotations

import itertools
import re
from collections import OrderedDict

FIXED, RANGE, ENUMERATED = "fixed", "range", "enumerated"
_SIZE = re.compile(r"^[0-9]+$")


class ShapeSpecError(ValueError):
    """A malformed shape text; the message says what is wrong, for one error line."""


class FlexShape(object):
    """Dims, each an int (fixed), a (lo, hi) tuple (range) or a list of ints (enumerated)."""

    def __init__(self, dims):
        self.dims = [tuple(d) if isinstance(d, tuple) else (list(d) if isinstance(d, list) else int(d))
                     for d in dims]

    # --- reading ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text):
        """``1x16000..64000`` / ``1,8,16x1024`` / ``1x3x224x224``; ShapeSpecError if malformed."""
        if not text:
            raise ShapeSpecError("an empty shape")
        dims = []
        for part in text.split("x"):
            if ".." in part:
                lo, _, hi = part.partition("..")
                if not (_SIZE.match(lo) and _SIZE.match(hi)):
                    raise ShapeSpecError("range {!r} must be LO..HI, two sizes, e.g. 16000..64000".format(part))
                lo, hi = int(lo), int(hi)
                if lo < 1 or hi <= lo:
                    raise ShapeSpecError("range {!r} needs 1 <= LO < HI".format(part))
                dims.append((lo, hi))
            elif "," in part:
                values = part.split(",")
                if not all(_SIZE.match(v) for v in values):
                    raise ShapeSpecError("enumerated dim {!r} must be sizes joined by commas, e.g. "
                                         "1,8,16".format(part))
                values = [int(v) for v in values]
                if min(values) < 1 or len(set(values)) != len(values):
                    raise ShapeSpecError("enumerated dim {!r} needs distinct positive sizes".format(part))
                dims.append(values)
            elif _SIZE.match(part) and int(part) >= 1:
                dims.append(int(part))
            else:
                raise ShapeSpecError("dim {!r} is not a positive size, a range LO..HI or sizes "
                                     "A,B,C".format(part))
        shape = cls(dims)
        if shape.kind is None:
            raise ShapeSpecError("a range and enumerated dims in one input: Core ML takes an "
                                 "input's flexibility as either a range (RangeDim) or a list of "
                                 "shapes (EnumeratedShapes), not both")
        return shape

    @classmethod
    def fixed(cls, shape):
        return cls([int(d) for d in shape])

    @property
    def kind(self):
        """fixed / range / enumerated (None: both kinds mixed, which ``parse`` refuses)."""
        ranges = any(isinstance(d, tuple) for d in self.dims)
        enums = any(isinstance(d, list) for d in self.dims)
        if ranges and enums:
            return None
        return RANGE if ranges else ENUMERATED if enums else FIXED

    @property
    def is_flexible(self):
        return self.kind != FIXED

    def flexible_axes(self):
        return [i for i, d in enumerate(self.dims) if not isinstance(d, int)]

    # --- the concrete shapes ----------------------------------------------------------------

    def enumerated(self):
        """Every shape an enumerated input takes, in the order given (product of its dims)."""
        options = [d if isinstance(d, list) else [d] for d in self.dims]
        return [tuple(s) for s in itertools.product(*options)]

    def default_shape(self):
        """The shape the routes trace / export at and Core ML's default: a range's middle
        (never an end: torch.export specializes a size-1 example); for enumerated shapes the
        first whose enumerated sizes are all above 1, else the first."""
        if self.kind == RANGE:
            return tuple(d if isinstance(d, int) else (d[0] + d[1]) // 2 for d in self.dims)
        if self.kind == ENUMERATED:
            shapes = self.enumerated()
            axes = self.flexible_axes()
            return next((s for s in shapes if all(s[a] > 1 for a in axes)), shapes[0])
        return tuple(self.dims)

    def case_shapes(self):
        """The shapes verification covers, the default first: a range's middle and both ends
        (all range dims at once), or every enumerated shape."""
        default = self.default_shape()
        if self.kind == RANGE:
            ends = [tuple(d if isinstance(d, int) else d[i] for d in self.dims) for i in (0, 1)]
            others = ends
        elif self.kind == ENUMERATED:
            others = self.enumerated()
        else:
            others = []
        return [default] + [s for s in others if s != default]

    def allows(self, shape):
        shape = tuple(int(s) for s in shape)
        if len(shape) != len(self.dims):
            return False
        if self.kind == ENUMERATED:
            return shape in self.enumerated()
        return all(s == d if isinstance(d, int) else d[0] <= s <= d[1]
                   for s, d in zip(shape, self.dims))

    # --- words --------------------------------------------------------------------------------

    def spec_text(self):
        """As ``--input`` takes it: ``1x1..16x1024``."""
        return "x".join(_dim_spec(d) for d in self.dims)

    def text(self):
        """``fixed 1x1024`` / ``range 1..16 x 1024`` / ``enumerated {1,8,16} x 1024``."""
        if self.kind == FIXED:
            return "fixed " + "x".join(str(d) for d in self.dims)
        return "{} {}".format(self.kind, " x ".join(_dim_text(d) for d in self.dims))

    def __repr__(self):
        return "FlexShape({!r})".format(self.spec_text())

    def __eq__(self, other):
        return isinstance(other, FlexShape) and self.dims == other.dims

    def __ne__(self, other):
        return not self == other

    # --- JSON -------------------------------------------------------------------------------

    def to_json(self):
        return [d if isinstance(d, int) else {"range": list(d)} if isinstance(d, tuple)
                else {"enumerated": list(d)} for d in self.dims]

    @classmethod
    def from_json(cls, dims):
        return cls([d if isinstance(d, int) else tuple(d["range"]) if "range" in d
                    else list(d["enumerated"]) for d in dims])


def _dim_spec(d):
    if isinstance(d, tuple):
        return "{}..{}".format(*d)
    if isinstance(d, list):
        return ",".join(str(v) for v in d)
    return str(d)


def _dim_text(d):
    if isinstance(d, list):
        return "{" + ",".join(str(v) for v in d) + "}"
    return _dim_spec(d)


def shape_label(shape):
    return "x".join(str(int(d)) for d in shape)


def case_plan(shapes):
    """[(label, {name: concrete shape})] for inputs ``shapes`` ({name: FlexShape}): each
    flexible input walks its ``case_shapes`` (the k-th case takes each input's k-th shape,
    the last repeated for an input with fewer), the others stay fixed. Labels name the
    flexible inputs' shapes: ``waveform=1x16000``."""
    flexible = [n for n, s in shapes.items() if s.is_flexible]
    lists = dict((n, s.case_shapes()) for n, s in shapes.items())
    count = max([len(lists[n]) for n in flexible] or [1])
    plan = []
    for k in range(count):
        concrete = OrderedDict((n, lists[n][min(k, len(lists[n]) - 1)]) for n in shapes)
        label = ",".join("{}={}".format(n, shape_label(concrete[n])) for n in flexible) or "example"
        plan.append((label, concrete))
    return plan


# --- the record's words for what a route's artifact declares ------------------------------------

def shapes_from_json(data):
    """{name: FlexShape} from the JSON ``builds.read_input_shapes`` returns (None: none)."""
    if not data:
        return None
    return OrderedDict((name, FlexShape.from_json(dims)) for name, dims in data.items())


def shapes_to_json(shapes):
    return OrderedDict((name, shape.to_json()) for name, shape in shapes.items())


def flexible(job):
    """{name: FlexShape} of the job's flexible inputs (empty when every input is fixed)."""
    shapes = getattr(job, "input_shapes", None) or {}
    return OrderedDict((n, s) for n, s in shapes.items() if s.is_flexible)


def fixed_texts(job):
    """Every input as converted at one shape: {name: "fixed 1x1024"}."""
    return OrderedDict((n, FlexShape.fixed(a.shape).text()) for n, a in job.inputs.items())


def asked_texts(job):
    """{name: text} of what was asked for every input: the flexible ones as asked, the
    others fixed at their example's shape."""
    texts = fixed_texts(job)
    texts.update((n, s.text()) for n, s in flexible(job).items())
    return texts


def array_type_text(array_type):
    """How a Core ML multiArrayType declares its shape, in ``text``'s words (a range with an
    unbounded top says ``..inf``)."""
    # The evaluator's reading of the flexibility; the v3 worker (Python 3.7) runs this too.
    from coreml_reference.inputs import allowed_shapes
    shapes = allowed_shapes(array_type) or [[]]
    if len(shapes) > 1:
        return _enumerated_text([tuple(s) for s in shapes])
    return FlexShape([(d[0], d[1] if d[1] >= 0 else "inf") if isinstance(d, tuple) else d
                      for d in shapes[0]]).text()


def _enumerated_text(shapes):
    """Shapes differing in some axes: ``enumerated {1,8,16} x 1024`` when they are a product
    of per-axis sizes, else the shapes listed."""
    rank = len(shapes[0])
    if all(len(s) == rank for s in shapes):
        axes = [sorted(set(s[i] for s in shapes)) for i in range(rank)]
        product = FlexShape([a if len(a) > 1 else a[0] for a in axes])
        if sorted(product.enumerated()) == sorted(shapes):
            return product.text()
    return "enumerated " + " | ".join(shape_label(s) for s in shapes)


def declared_texts(spec):
    """{input name: text} of a Core ML spec's inputs, as the model file declares them."""
    out = OrderedDict()
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") == "multiArrayType":
            out[feature.name] = array_type_text(feature.type.multiArrayType)
    return out


# --- the toolchains' forms --------------------------------------------------------------------

def ct_shape(ct, shape):
    """coremltools' form of a flexible shape: a tuple with ``ct.RangeDim`` for a range (its
    default the middle), ``ct.EnumeratedShapes`` (default ``default_shape``) otherwise."""
    default = shape.default_shape()
    if shape.kind == RANGE:
        return tuple(d if isinstance(d, int) else ct.RangeDim(lower_bound=d[0], upper_bound=d[1],
                                                              default=default[i])
                     for i, d in enumerate(shape.dims))
    if shape.kind == ENUMERATED:
        return ct.EnumeratedShapes(shapes=[list(s) for s in shape.enumerated()], default=list(default))
    return tuple(shape.dims)


def export_dims(job):
    """torch.export's ``dynamic_shapes`` for the job's positional inputs (a tuple, one entry
    per input: {axis: Dim} or None), or None when every input is fixed. An enumerated dim
    becomes a Dim spanning its smallest to largest size (torch.export has no enumeration);
    the route narrows it its own way, or says it converted a range."""
    flex = flexible(job)
    if not flex:
        return None
    import torch
    per_input = []
    for name in job.inputs:
        shape = flex.get(name)
        if shape is None:
            per_input.append(None)
            continue
        axes = {}
        for axis in shape.flexible_axes():
            d = shape.dims[axis]
            lo, hi = (d[0], d[1]) if isinstance(d, tuple) else (min(d), max(d))
            axes[axis] = torch.export.Dim("{}_{}".format(name, axis), min=lo, max=hi)
        per_input.append(axes)
    return (tuple(per_input),)    # the module's forward takes *inputs: one tuple of them


def onnx_dynamic_axes(job):
    """torch.onnx.export's ``dynamic_axes`` for the flexible inputs: {name: {axis: label}}."""
    return dict((name, dict((a, "{}_{}".format(name, a)) for a in shape.flexible_axes()))
                for name, shape in flexible(job).items())
