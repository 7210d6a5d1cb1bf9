"""``coreml-routes predict``: run a Core ML model on Linux with the reference evaluator."""
from __future__ import annotations

import argparse
import os
import sys

from coreml_routes.errors import UserError

HELP = """\
Run a converted model on Linux, no macOS needed: a Core ML model (.mlmodel or .mlpackage)
with coreml_reference, a numpy evaluator of the spec; an ExecuTorch program (.pte) in route
et's env, its Core ML partitions by coreml_reference and the other ops by torch; a Core AI
model (.aimodel) in route coreai's env, by Apple's own Core AI interpreter. Prints each
output's name, shape and dtype, min / max / mean (of its finite values), its inf and NaN
counts and its first values; when the model's folder holds golden.npz and the input is its
input, also the max abs error and SNR of every output against PyTorch.

A classifier-like output (its last axis as long as the label list) prints its top 5 classes
by name: --labels FILE (one name a line, or a CSV with a `name` or `display_name` column),
or for a PANNs build of the zoo the 527 AudioSet class names (AudioSet ontology, CC BY-SA
4.0; see zoo/data/README.md). An output with several rows (PANNs' frame_output) ranks each
class by its maximum over the rows.

--input takes an .npz (arrays by input name, or the input:<name> keys of golden.npz), a
.wav file (mono mix, resampled to the model's sample rate, cut or zero-padded to the
model's fixed input length), or a PNG / JPEG for a model with one image input (converted to
the input's color mode; its size must be one the model takes). An array of another dtype
than the input's declared type is converted to it, as MLModel.predict does (-v says so).
A classifier's label prints as is, its probabilities as the top 3.
"""


def register(subparsers):
    p = subparsers.add_parser("predict", help="run a Core ML model with the reference evaluator",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL",
                   help="path to model.mlmodel, model.mlpackage, model.pte or model.aimodel")
    p.add_argument("--input", required=True, metavar="FILE", help=".npz, .wav or image input")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32",
                   help="fp32: the model as typed, Core ML on CPU (an fp16 ML Program, "
                        "coremltools' default, then runs in float16 op by op); fp16: emulate GPU / "
                        "Neural Engine float16 (weights and every intermediate rounded to float16)")
    p.add_argument("--out", metavar="OUT.npz", help="save the outputs here")
    p.add_argument("--steps", type=int, metavar="K",
                   help="a stateful model (a KV cache, a streaming context): K successive calls "
                        "with one state, from zeros; every array in --input carries a leading "
                        "axis of K, one slice per call, and the outputs gain that axis")
    p.add_argument("--labels", metavar="FILE",
                   help="class names for classifier-like outputs (an output whose last axis has "
                        "as many entries as names): one name a line, or a CSV with a 'name' or "
                        "'display_name' column; the top 5 print by name (PANNs builds: AudioSet's "
                        "names by default)")
    p.set_defaults(run=run)


def run(args) -> int:
    import numpy as np
    import coreml_reference
    from coreml_reference import metrics

    from coreml_routes import output_text
    out = checked_out_path(args.out) if args.out else None
    labels, labels_source = output_text.labels_for(getattr(args, "labels", None), args.model)
    steps = getattr(args, "steps", None)
    if steps is not None and steps < 1:
        raise UserError("--steps must be at least 1, not {}".format(steps))
    backend = route_for_artifact(args.model)
    if backend is not None:
        inputs, outputs = run_in_route_env(backend, args)
    else:
        loaded = coreml_reference.load(args.model)   # its errors are BadInput: the user's file
        inputs = read_inputs(args.input, loaded)
        verbose = getattr(args, "verbose", False)
        if steps:
            state = coreml_reference.new_state(loaded)
            outputs = stack_steps([coreml_reference.predict(
                loaded, as_declared_types(call, loaded, verbose), precision=args.precision,
                state=state) for call in steps_of_input(inputs, steps, args.input)])
        else:
            inputs = as_declared_types(inputs, loaded, verbose)
            outputs = coreml_reference.predict(loaded, inputs, precision=args.precision)
    golden = golden_for(args.model, inputs)
    print("{} ({}):".format(args.model, "as typed" if args.precision == "fp32" else "fp16 emulated"))
    for name, value in outputs.items():
        if not isinstance(value, np.ndarray):         # a classifier's label or probabilities
            print("  {:<16} {}".format(name, _feature_text(value)))
            continue
        line = "  {:<16} {}".format(name, output_text.summary_line(value))
        if golden is not None and name in golden:
            expected = golden[name]
            line += "  max abs error {:.3g}  SNR {:.1f} dB".format(
                metrics.max_abs_error(value, expected), metrics.snr_db(value, expected))
        print(line)
        indent = " " * 19
        print(indent + output_text.first_values(value))
        if output_text.is_classifier_like(value, labels):
            print("\n".join(output_text.top_lines(value, labels, labels_source, indent=indent)))
    if labels is not None and getattr(args, "labels", None) and not any(
            output_text.is_classifier_like(v, labels) for v in outputs.values()
            if isinstance(v, np.ndarray)):
        print("  --labels: {} names, and no output has a last axis of {}".format(
            len(labels), len(labels)))
    if out:
        try:
            np.savez(out, **_as_arrays(outputs))
        except OSError as e:
            raise UserError("cannot write --out {}: {}".format(out, e.strerror or e))
        print("saved {}".format(out))
    return 0


def route_for_artifact(path):
    """The route whose own env runs ``path`` (a .pte, an .aimodel), or None for a Core ML
    model, which the host's evaluator opens itself."""
    import backends
    suffix = os.path.splitext(os.path.normpath(path))[1]
    for backend in backends.all_routes().values():
        if not backend.runs_in_host and os.path.splitext(backend.artifact)[1] == suffix:
            return backend
    return None


def steps_of_input(inputs, steps, path):
    """--input's arrays, one dict per call; a leading axis that is not --steps long is one
    error line naming the array."""
    from backends.builds import split_steps
    try:
        return split_steps(inputs, steps)
    except ValueError as e:
        raise UserError("--input {} with --steps {}: {}".format(path, steps, e))


def stack_steps(per_call):
    from backends.builds import stack_steps as stack
    return stack(per_call)


def run_in_route_env(backend, args):
    """(inputs, outputs) of ``args.model`` run by its route's runtime in that route's env."""
    from backends.artifact_run import ArtifactRunError, run_in_env
    from backends.base import NotEmulated
    from pipeline.envs import child_env, env_python
    if not os.path.exists(args.model):
        raise UserError("model file not found: {}".format(args.model))
    inputs = read_inputs(args.input, None, args.model)
    python = env_python(backend, provision=False)   # no env yet: one line saying `tox -e ...`
    steps = getattr(args, "steps", None)
    if steps:
        steps_of_input(inputs, steps, args.input)   # the user's mistake, said here, not there
    try:
        outputs = run_in_env(python, backend.name, os.path.abspath(args.model), inputs,
                             args.precision, env=child_env(), steps=steps)
    except NotEmulated as e:
        raise UserError("--precision {} for {}: {}".format(args.precision, args.model, e))
    except ArtifactRunError as e:
        raise UserError("route {} cannot run {}: {}".format(backend.name, args.model, e))
    return inputs, outputs


def _feature_text(value):
    if isinstance(value, dict):
        top = sorted(value.items(), key=lambda item: -item[1])[:3]
        return "top {}: {}".format(len(top), ", ".join("{} {:.4g}".format(k, p) for k, p in top))
    return repr(value)


def _as_arrays(outputs):
    """Outputs as .npz arrays: {label: probability} becomes <name>:labels and <name>."""
    import numpy as np
    arrays = {}
    for name, value in outputs.items():
        if isinstance(value, dict):
            arrays[name + ":labels"] = np.array(list(value))
            value = list(value.values())
        arrays[name] = np.asarray(value)
    return arrays


def checked_out_path(path):
    """Check --out before the work: its folder is created if missing; a folder that cannot be
    made (a file in the way, no permission) is one error line."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserError("--out {} is a directory; give a file name such as {}".format(
            path, os.path.join(path, "out.npz")))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        reason = "a file is in the way" if isinstance(e, (FileExistsError, NotADirectoryError)) \
            else e.strerror or e
        raise UserError("--out {}: cannot create folder {}: {}".format(path, folder, reason))
    if not os.access(folder, os.W_OK):
        raise UserError("--out {}: folder {} is not writable".format(path, folder))
    return path


NPZ_MAGIC, WAV_MAGIC = b"PK", b"RIFF"
IMAGE_MAGICS = (b"\x89PNG", b"\xff\xd8\xff")     # PNG, JPEG


def read_inputs(path, loaded, model_path=None):
    """{name: array} from --input; ``loaded`` is the Core ML model (None for a route's own
    artifact, whose inputs are then read from its conversion record)."""
    if os.path.isdir(path):
        raise UserError("--input {} is a directory; give an .npz or .wav file".format(path))
    if not os.path.isfile(path):
        raise UserError("input file not found: {}".format(path))
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == WAV_MAGIC:
        if loaded is None:
            return wav_inputs(path, model_path, recorded_inputs(model_path))
        return wav_inputs(path, loaded.path, [(f.name, [int(d) for d in f.type.multiArrayType.shape])
                                              for f in loaded.spec.description.input])
    if magic.startswith(IMAGE_MAGICS):
        if loaded is None:
            raise UserError("an image --input needs a Core ML model with an image input; give {} "
                            "an .npz".format(model_path))
        return image_inputs(path, loaded)
    if not magic.startswith(NPZ_MAGIC):
        raise UserError("--input {} is not an .npz, .wav or image file (expected arrays saved "
                        "with numpy.savez, RIFF/WAVE audio, or PNG / JPEG)".format(path))
    from backends.builds import read_arrays
    try:
        arrays, _ = read_arrays(path, plain_are_inputs=True)
    except Exception as e:
        raise UserError("cannot read {} as .npz: {}".format(path, e))
    return arrays


def as_declared_types(inputs, loaded, verbose=False):
    """Each array in its input's declared type, converted as MLModel.predict converts it."""
    import numpy as np

    from coreml_reference.dtypes import ARRAY_DTYPES
    declared = {f.name: f.type.multiArrayType.dataType for f in loaded.spec.description.input
                if f.type.WhichOneof("Type") == "multiArrayType"}
    converted = dict(inputs)
    for name, value in inputs.items():
        want = ARRAY_DTYPES.get(declared.get(name))
        value = np.asarray(value)
        if want is not None and value.dtype != want:
            converted[name] = value.astype(want)
            if verbose:
                sys.stderr.write("input {!r}: {} array converted to the model's {}, as "
                          "MLModel.predict does\n".format(name, value.dtype, want))
    return converted


def recorded_inputs(model_path):
    """[(name, shape)] of a route artifact's inputs, from the conversion record beside it."""
    from backends.builds import read_record
    record = read_record(os.path.dirname(os.path.abspath(model_path)))
    if record is None or not record.get("inputs"):
        raise UserError("a .wav --input needs the input's name and shape, which {} does not say "
                        "(no conversion.json beside it): give an .npz".format(model_path))
    return [(i["name"], i.get("shape") or []) for i in record["inputs"]]


def wav_inputs(path, model_path, declared):
    """A .wav for a model with one waveform input ``declared`` [(name, shape)]."""
    import numpy as np
    from scipy.io import wavfile
    from scipy.signal import resample_poly
    try:
        rate, data = wavfile.read(path)
    except Exception as e:
        raise UserError("cannot read {} as .wav: {}".format(path, e))
    if np.issubdtype(data.dtype, np.integer):
        data = data / float(np.iinfo(data.dtype).max)
    if data.ndim == 2:
        data = data.mean(axis=1)
    target = model_sample_rate(model_path)
    if rate != target:
        data = resample_poly(data, target, rate)
    if len(declared) != 1:
        raise UserError("a .wav input needs a model with one input; {} has {}".format(
            model_path, len(declared)))
    name, shape = declared[0]
    length = shape[-1]
    wave = np.zeros(length, dtype=np.float32)
    wave[:min(length, len(data))] = data[:length]
    return {name: wave.reshape(shape)}


def image_inputs(path, loaded):
    """A PNG / JPEG for a model whose one input is an image, in that input's PIL mode."""
    from PIL import Image
    from coreml_reference.inputs import COLOR_SPACES
    inputs = list(loaded.spec.description.input)
    if len(inputs) != 1 or inputs[0].type.WhichOneof("Type") != "imageType":
        raise UserError("an image --input needs a model with one image input; {} takes {}".format(
            loaded.path, ", ".join("{} ({})".format(f.name, f.type.WhichOneof("Type"))
                                   for f in inputs)))
    mode = COLOR_SPACES.get(inputs[0].type.imageType.colorSpace, (None, "RGB"))[1]
    try:
        with Image.open(path) as image:
            return {inputs[0].name: image.convert(mode)}
    except Exception as e:
        raise UserError("cannot read {} as an image: {}".format(path, e))


def model_sample_rate(model_path, default=32000):
    """The zoo model's rate, from the conversion record beside the model file."""
    from backends.builds import read_record
    import zoo
    record = read_record(os.path.dirname(os.path.abspath(model_path)))
    try:
        return zoo.get(record.model if record else "").sample_rate
    except zoo.ZooError:
        return default


def golden_for(model_path, inputs):
    """PyTorch's outputs from golden.npz beside the model, only when it was made from these
    very inputs: {name: array}, or None."""
    import numpy as np
    from backends.builds import golden_path, read_golden
    folder = os.path.dirname(os.path.abspath(model_path))
    if not os.path.exists(golden_path(folder)):
        return None
    golden_inputs, outputs = read_golden(folder)
    for name, value in inputs.items():
        expected = golden_inputs.get(name)
        if expected is None or expected.shape != np.shape(value) or not np.array_equal(expected, value):
            return None
    return outputs