"""The one interface every conversion route implements.

A route module defines ``BACKEND = SomeBackend()``. Route modules import nothing heavy at
module level: the host (Python 3.11) reads their metadata, while only the route's own pinned
env imports its toolchain (``load_toolchain``). Runs on Python 3.7.
"""
from __future__ import annotations

import contextlib
import difflib
import time
from collections import Counter

from bad_input import BadInput  # noqa: F401 — passes through stages unchanged


class ConversionError(Exception):
    """The converter rejected the model; carries the stage it happened in."""

    def __init__(self, stage, message):
        Exception.__init__(self, message)
        self.stage = stage


class NotEmulated(Exception):
    """The route's Linux runtime cannot emulate what was asked (e.g. fp16 arithmetic)."""


class Job(object):
    """What every route receives: the same module, example inputs and names."""

    def __init__(self, module, inputs, output_names, out_dir, hooks=None, source=None,
                 scripted=None):
        self.module = module              # torch.nn.Module, eval mode (None for an ONNX source)
        self.inputs = inputs              # OrderedDict name -> numpy array
        self.output_names = output_names  # names of the module's outputs, in order
        self.out_dir = out_dir            # where the route writes its files
        self.hooks = hooks                # dict of per-route overrides, or None
        self.source = source              # backends.sources.Source the module came from
        self.scripted = scripted          # a TorchScript module to convert as it is, or None
        self.output_shapes = None         # PyTorch's output shapes, once the golden run is done
        self.golden_source = None         # where the golden outputs came from
        self.variant = None               # backends.variants name, or None for the default

    def torch_inputs(self):
        import torch
        return tuple(torch.from_numpy(a) for a in self.inputs.values())


class Stages(object):
    """Times named stages, and leaves the current stage in a file so that a parent process
    can tell where a converter died even when it died by a signal."""

    def __init__(self, progress_path=None):
        self.seconds = {}
        self.current = None
        self._progress_path = progress_path

    def __call__(self, name):
        return _Stage(self, name)

    def _enter(self, name):
        self.current = name
        if self._progress_path:
            with open(self._progress_path, "w") as f:
                f.write(name)


class Untimed(object):
    """Stages for running a model outside a conversion: nothing is timed or recorded."""

    def __call__(self, name):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Stage(object):
    def __init__(self, stages, name):
        self.stages = stages
        self.name = name

    def __enter__(self):
        self.stages._enter(self.name)
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        elapsed = time.perf_counter() - self.start
        self.stages.seconds[self.name] = round(self.stages.seconds.get(self.name, 0.0) + elapsed, 4)
        if exc is not None and not isinstance(exc, (ConversionError, BadInput,
                                                    KeyboardInterrupt, SystemExit)):
            raise ConversionError(self.name, "{}: {}".format(type(exc).__name__, last_line(str(exc))))
        return False


_BACKTRACE = ("frame #", "Exception raised from", "<omitting python frames>")


def last_line(text):
    """The last non-empty line: where Python, the converters and pip put the actual reason
    (torch's C++ errors append a backtrace: skipped)."""
    lines = [line.strip() for line in (text or "").strip().splitlines()
             if line.strip() and not line.strip().startswith(_BACKTRACE)]
    return lines[-1] if lines else ""


class Backend(object):
    """A conversion route. Subclasses set the metadata and implement the two methods."""

    name = None          # route name on the command line, e.g. "v3"
    env = None           # tox env with the pinned toolchain
    python = None        # Python version of that env, e.g. "3.7"
    artifact = None      # file name of the converted model in the route's folder
    summary = ""         # one line for --help and the tables
    hook_kind = None     # what a hooks file overrides for this route (for --help)
    variants = ()        # backends.variants names this route can build besides its default
    runtime = "Core ML"  # what runs the artifact on a device (compare's runtime column)
    order = 100          # place in the default route list and every table (lower first)
    min_os = None        # oldest OS that runs the artifact when its spec version does not say
    # True when the host's coreml_reference opens the artifact itself (.mlmodel / .mlpackage);
    # False when only the route's own env can run it (``run_artifact`` there, through
    # ``python -m backends.artifact_run``).
    runs_in_host = True
    # Whether the route converts a stateful model's mutated buffers as states; if not, why
    # (the worker records the route "not applicable" with that reason).
    takes_states = False
    states_reason = "states need iOS 18 (Core ML spec 9)"

    def accepts(self, source):
        """None when this route can start from ``source`` (a ``backends.sources.Source``),
        else why not: the route is then "not applicable", neither ok nor failed."""
        from backends.sources import ONNX
        if source.kind == ONNX:
            return "ONNX input needs route v3"
        return None

    def load_toolchain(self):
        """Import the toolchain (some need a fixed order) and return {package: version}."""
        raise NotImplementedError

    def convert(self, job, stages):
        """Convert ``job.module`` and write ``job.out_dir/self.artifact``.

        Time each step with ``with stages("trace"): ...``; return a dict of extra facts
        for the record (may be empty). Raise ConversionError (or let a stage raise)."""
        raise NotImplementedError

    def inspect(self, path):
        """Static facts about the artifact at ``path`` for the record (in the route's env):
        at least ``spec_type`` and ``file_bytes``."""
        from backends.inspect_spec import summarize
        return summarize(path)

    def compute_units(self, record):
        """Compute units the artifact may run on, by the runtime's documented rules."""
        from backends.variants import compute_units
        return compute_units(record.get("spec_type"), record.get("compute_precision"))

    def run_artifact(self, path, record, inputs, precision="fp32"):
        """{output name: array}: the artifact at ``path`` run on ``inputs`` by the means this
        host has (no device): Core ML models by coreml_reference. ``precision`` "fp16" asks
        for the GPU / Neural Engine emulation; a route without one raises NotEmulated."""
        import coreml_reference
        return coreml_reference.predict(path, inputs, precision=precision)

    def run_artifact_steps(self, path, record, inputs, steps, precision="fp32"):
        """A stateful model's successive calls: ``inputs`` carry a leading axis of ``steps``;
        one state (zeroed) through every call; the outputs stacked the same way."""
        import coreml_reference
        from backends.builds import split_steps, stack_steps
        model = coreml_reference.load(path)
        state = coreml_reference.new_state(model)
        return stack_steps([coreml_reference.predict(model, call, precision=precision, state=state)
                            for call in split_steps(inputs, steps)])

    def watch_ops(self):
        """A context manager around ``convert`` yielding an ``OpsSeen`` that fills with the op
        names this route's converter looks conversion functions up by (what a hooks file
        keys on). Routes that take no hooks see nothing."""
        return _watch_nothing()

    def intermediates(self, job, path):
        """For diagnose, after ``convert``: save PyTorch's value of every intermediate the
        converter names, under that name (see ``backends.intermediates``); return
        {"kind", "count", "file"}."""
        raise ConversionError("intermediates", "route {} cannot save PyTorch's intermediates"
                              .format(self.name))


class OpsSeen(object):
    """Op names a converter looked up while converting one model, with counts."""

    def __init__(self):
        self.counts = Counter()
        self.other_keys = set()    # further keys a hook may use (v3: ONNX node names)

    def misses(self, keys):
        """{key: [closest op names]} for each hook key that names no op seen."""
        names = sorted(self.counts)
        lowered = dict((n.lower(), n) for n in names)
        found = {}
        for key in keys:
            if key in self.counts or key in self.other_keys:
                continue
            close = difflib.get_close_matches(key.lower(), list(lowered), n=3, cutoff=0.5)
            found[key] = [lowered[c] for c in close] or names[:3]
        return found


@contextlib.contextmanager
def _watch_nothing():
    yield OpsSeen()
