"""How fast is the numpy reference evaluator, next to PyTorch eager and onnxruntime?

    python -m bench.evaluator_speed [--models M ...] [--build DIR] [--repeat N] [--threads T]
                                    [--encoder] [--encoder-only] [--encoder-dir DIR]

Prints ratios measured side by side in one run: every runner of a table is called in turn,
round after round (interleaved), so all of them see the same machine load; ratios are of
medians (the fastest round is shown too: PyTorch's 2-thread pool degrades under load).
Models are loaded once before timing (decoding weights is part of loading, as for a runtime);
the first, cold evaluation is shown apart. The thread counts used (torch, numpy's BLAS,
onnxruntime) and the load average before / after are printed with the figures.

Zoo (``--models``, default pann_mobilenetv1): PyTorch eager (``zoo.get(name).build()``, fp32,
no grad) against the evaluator on every route's model under ``DIR/<model>/<route>/`` (v3, v4,
v9, v9-export ...), on that route's golden inputs. ML Programs run as typed: an fp16-typed
program (coremltools' default) is emulated by rounding to float16 where the program says so.
Goals: same precision as PyTorch <= 1.0x; fp16-typed programs <= 1.2x. For v3, the evaluator
on model.mlmodel against onnxruntime on the route's own model.onnx: goal <= 2x.

Encoder (``--encoder``; builds and converts once, minutes, cached in ``--encoder-dir``): a
BERT-base-sized encoder (token + position embeddings, 12 layers each with its own weights,
d 768, 12 heads, FFN 3072, 128 tokens; ~108 M parameters), seeded weights, ``torch.export`` ->
coremltools at fp32 and fp16. Goals <= 1.2x (fp32), <= 1.5x (fp16); peak RSS growth of a fresh
process that loads and runs the fp32 model <= 1.5x its weights on disk.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from backends import builds  # noqa: E402

GOAL_SAME = 1.0       # evaluator / PyTorch, same precision
GOAL_FP16 = 1.2       # fp16-typed ML Program / PyTorch fp32
GOAL_ORT = 2.0        # NeuralNetwork / onnxruntime on v3's ONNX
GOAL_ENC32 = 1.2
GOAL_ENC16 = 1.5
GOAL_RSS = 1.5        # peak RSS growth / weights on disk

ENCODER = dict(vocab=30522, tokens=128, d=768, heads=12, ffn=3072, layers=12, seed=0)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    threads = args.threads or os.cpu_count() or 1
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)     # read by numpy's BLAS when first imported
    if args.rss_child:
        return rss_child(args.rss_child)
    import torch
    torch.set_num_threads(threads)
    print("threads: torch {}, numpy BLAS {}, onnxruntime intra-op {} (inter-op 1); "
          "os.cpu_count() {}".format(torch.get_num_threads(), blas_threads(), threads,
                                     os.cpu_count()))
    print("load average before: {}".format(load_average()))
    status = 0
    if not args.encoder_only:
        for model in args.models:
            status |= zoo_table(args, model, threads)
    if args.encoder or args.encoder_only:
        status |= encoder_table(args, threads)
    print("load average after: {}".format(load_average()))
    return status


def parse_args(argv):
    default_build = os.environ.get("COREML_ROUTES_BUILD") or os.path.join(ROOT, "build")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=default_build,
                        help="build directory (default: $COREML_ROUTES_BUILD or <repo>/build)")
    parser.add_argument("--models", nargs="+", default=["pann_mobilenetv1"],
                        help="zoo models (default: pann_mobilenetv1)")
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for torch, numpy's BLAS and onnxruntime "
                             "(default: os.cpu_count())")
    parser.add_argument("--encoder", action="store_true",
                        help="also the BERT-base-sized encoder (first run converts it: minutes)")
    parser.add_argument("--encoder-only", action="store_true", help="only the encoder")
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                         "coreml-routes", "bench-encoder")
    parser.add_argument("--encoder-dir", default=cache,
                        help="where the converted encoder is kept (default: {})".format(cache))
    parser.add_argument("--encoder-layers", type=int, default=ENCODER["layers"],
                        help="encoder layers (default 12; fewer for a quick look)")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- measuring ------------------------------------------------------------------------------

def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def interleaved(runners, repeat):
    """{name: [seconds]} after one warm-up call each, then ``repeat`` rounds of all runners;
    {name: cold seconds} of the first call; and {name: error} for runners that failed."""
    cold, errors = {}, {}
    for name, call in list(runners.items()):
        try:
            cold[name] = timed(call)
        except Exception as error:                 # noqa: BLE001 — report, keep benchmarking
            errors[name] = "{}: {}".format(type(error).__name__, error)
            del runners[name]
    times = {name: [] for name in runners}
    for _ in range(repeat):
        for name, call in runners.items():
            times[name].append(timed(call))
    return times, cold, errors


def load_average():
    try:
        return " ".join("{:.2f}".format(v) for v in os.getloadavg())
    except OSError:
        return "n/a"


def blas_threads():
    """numpy's BLAS threads, and how the evaluator uses them (``coreml_reference.blas``)."""
    try:
        from coreml_reference import blas
        configured = blas.configured_threads()
    except ImportError:                            # an evaluator without per-product choice
        configured = None
    if configured is None:
        return "{} (OPENBLAS_NUM_THREADS; the evaluator makes no per-product choice)".format(
            os.environ.get("OPENBLAS_NUM_THREADS", "?"))
    return ("{} (the evaluator: 1 for products under {:.0f} M multiply-adds or while the load "
            "average is >= cores + 1)".format(configured, blas.SMALL_MACS / 1e6))


def verdict(ratio, goal):
    return "ok" if ratio <= goal else "MISSED"


def print_rows(rows, times, cold):
    """rows: (label, runner name, reference runner name or None, goal or None)."""
    medians = {name: statistics.median(t) for name, t in times.items()}
    print("  {:<40} {:>10} {:>10} {:>10} {:>8} {:>6}  {}".format(
        "runner", "median s", "min s", "cold s", "ratio", "goal", ""))
    for label, name, ref, goal in rows:
        if name not in medians:
            continue
        ratio = medians[name] / medians[ref] if ref in medians else None
        print("  {:<40} {:>10.4f} {:>10.4f} {:>10.4f} {:>8} {:>6}  {}".format(
            label, medians[name], min(times[name]), cold.get(name, float("nan")),
            "-" if ratio is None else "{:.2f}".format(ratio),
            "-" if goal is None else "{:.1f}".format(goal),
            "" if goal is None or ratio is None else verdict(ratio, goal)))
    return medians


# --- the zoo ----------------------------------------------------------------------------------

def zoo_table(args, model, threads):
    routes, skipped = load_routes(args.build, model)
    if not routes:
        print("{}: no runnable route under {}".format(model, args.build))
        for route, reason in skipped:
            print("  skipped {}: {}".format(route, reason))
        return 1
    inputs = next(iter(routes.values()))["inputs"]
    runners = {"pytorch": torch_runner(model, inputs)}
    rows = [("pytorch eager (fp32)", "pytorch", None, None)]
    for route, entry in routes.items():
        runners[route] = entry["call"]
        typed = entry["typed"]
        goal = GOAL_FP16 if typed == "fp16" else GOAL_SAME
        rows.append(("evaluator {} ({}) / pytorch".format(route, typed), route, "pytorch", goal))
    v3 = routes.get("v3")
    onnx_file = os.path.join(args.build, model, "v3", "model.onnx")
    if v3 is not None and os.path.exists(onnx_file):
        try:
            runners["onnxruntime v3"] = ort_runner(onnx_file, v3["inputs"], threads)
            rows.append(("onnxruntime v3 model.onnx", "onnxruntime v3", None, None))
            rows.append(("evaluator v3 / onnxruntime v3", "v3", "onnxruntime v3", GOAL_ORT))
        except Exception as error:                 # noqa: BLE001
            skipped.append(("onnxruntime v3", "{}: {}".format(type(error).__name__, error)))
    runners["pytorch"]()                           # warm-up: first eager call allocates
    times, cold, errors = interleaved(runners, args.repeat)
    skipped.extend(errors.items())
    print()
    print("{} — median of {} interleaved rounds, build {}, load average {}".format(
        model, args.repeat, args.build, load_average()))
    print_rows(rows, times, cold)
    for route, reason in skipped:
        print("  skipped {}: {}".format(route, reason))
    return 0


def load_routes(build, model):
    """{route: {"call", "inputs", "typed"}} for every artifact the evaluator can load."""
    from coreml_reference.loader import load
    folder = os.path.join(build, model)
    routes, skipped = {}, []
    if not os.path.isdir(folder):
        return routes, [("*", "{} does not exist".format(folder))]
    for route in sorted(os.listdir(folder)):
        if route.startswith(".") or not os.path.isdir(os.path.join(folder, route)):
            continue                               # a conversion in progress, files
        artifact = find_artifact(os.path.join(folder, route))
        golden = builds.golden_path(os.path.join(folder, route))
        if artifact is None or not os.path.exists(golden):
            skipped.append((route, "no .mlmodel / .mlpackage with golden.npz (not timed here)"))
            continue
        try:
            loaded = load(artifact)
            run = evaluator_for(loaded)
        except Exception as error:                 # noqa: BLE001
            skipped.append((route, "{}: {}".format(type(error).__name__, error)))
            continue
        inputs = builds.read_golden(os.path.join(folder, route))[0]
        routes[route] = {"call": (lambda run=run, loaded=loaded, inputs=inputs: run(loaded, inputs)),
                         "inputs": inputs, "typed": typed_precision(loaded)}
    return routes, skipped


def find_artifact(route_dir):
    for name in ("model.mlpackage", "model.mlmodel"):
        path = os.path.join(route_dir, name)
        if os.path.exists(path):
            return path
    return None


def evaluator_for(loaded):
    """The evaluator's run function for this spec kind, called on one LoadedModel so repeated
    runs reuse decoded weights."""
    from coreml_reference import runner_for
    return runner_for(loaded)


def typed_precision(loaded):
    """"fp16" for an ML Program with float16-typed values, else "fp32"."""
    if loaded.spec.WhichOneof("Type") != "mlProgram":
        return "fp32"
    for fn in loaded.spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                for out in op.outputs:
                    if out.type.WhichOneof("type") == "tensorType" \
                            and out.type.tensorType.dataType == 10:
                        return "fp16"
    return "fp32"


def torch_runner(model, inputs):
    import numpy as np
    import torch
    import zoo
    module = zoo.get(model).build().eval()
    tensors = [torch.from_numpy(np.ascontiguousarray(inputs[name])) for name in zoo.get(model).inputs]

    def call():
        with torch.no_grad():
            module(*tensors)
    return call


def ort_runner(path, inputs, threads):
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Its threads would otherwise spin after each run, taking the cores from the runner
    # timed next (PyTorch eager measured 10x slower right after an onnxruntime call).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {}
    for i in session.get_inputs():
        value = np.asarray(inputs[i.name])
        feeds[i.name] = value.astype(np.float32) if i.type == "tensor(float)" else value

    def call():
        session.run(None, feeds)
    return call


# --- the encoder --------------------------------------------------------------------------------

def encoder_module(layers):
    import torch
    from torch import nn
    cfg = ENCODER

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(cfg["d"], 3 * cfg["d"])
            self.out = nn.Linear(cfg["d"], cfg["d"])
            self.norm1 = nn.LayerNorm(cfg["d"])
            self.up = nn.Linear(cfg["d"], cfg["ffn"])
            self.down = nn.Linear(cfg["ffn"], cfg["d"])
            self.norm2 = nn.LayerNorm(cfg["d"])

        def forward(self, x):
            b, t, d = x.shape
            h = cfg["heads"]
            q, k, v = self.qkv(x).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / (d // h) ** 0.5)
            att = torch.matmul(torch.softmax(scores, dim=-1), v)
            x = self.norm1(x + self.out(att.permute(0, 2, 1, 3).reshape(b, t, d)))
            return self.norm2(x + self.down(torch.nn.functional.gelu(self.up(x))))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = nn.Embedding(cfg["vocab"], cfg["d"])
            self.positions = nn.Parameter(torch.randn(cfg["tokens"], cfg["d"]) * 0.02)
            self.norm = nn.LayerNorm(cfg["d"])
            self.layers = nn.ModuleList([Layer() for _ in range(layers)])

        def forward(self, input_ids):
            x = self.norm(self.tokens(input_ids) + self.positions)
            for layer in self.layers:
                x = layer(x)
            return x

    torch.manual_seed(cfg["seed"])
    module = Encoder().eval()
    with torch.no_grad():                          # BERT-like init: small weights
        for name, p in module.named_parameters():
            if p.dim() >= 2 and "positions" not in name:
                p.normal_(0.0, 0.02)
    return module


def encoder_inputs():
    import numpy as np
    rng = np.random.default_rng(ENCODER["seed"])
    return {"input_ids": rng.integers(0, ENCODER["vocab"], (1, ENCODER["tokens"]), dtype=np.int32)}


def build_encoder(folder, layers):
    """{precision: .mlpackage path}, converting what is not in ``folder`` yet."""
    import numpy as np
    import torch
    paths = {p: os.path.join(folder, "encoder{}-{}.mlpackage".format(layers, p))
             for p in ("fp32", "fp16")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    import coremltools as ct
    os.makedirs(folder, exist_ok=True)
    module = encoder_module(layers)
    ids = torch.from_numpy(encoder_inputs()["input_ids"].astype(np.int64))
    start = time.perf_counter()
    exported = torch.export.export(module, (ids,)).run_decompositions({})
    for precision, path in paths.items():
        if os.path.exists(path):
            continue
        print("converting the encoder ({} layers) at {} ...".format(layers, precision), flush=True)
        mlmodel = ct.convert(
            exported, inputs=[ct.TensorType(name="input_ids", shape=ids.shape, dtype=np.int32)],
            convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
            compute_precision=(ct.precision.FLOAT16 if precision == "fp16"
                               else ct.precision.FLOAT32))
        staging = "{}.staging-{}.mlpackage".format(path[:-len(".mlpackage")], os.getpid())
        mlmodel.save(staging)
        os.replace(staging, path)
    print("encoder converted in {:.0f} s".format(time.perf_counter() - start))
    return paths


def encoder_table(args, threads):
    import numpy as np
    import torch
    from coreml_reference.loader import load
    from coreml_reference.metrics import snr_db
    paths = build_encoder(args.encoder_dir, args.encoder_layers)
    module = encoder_module(args.encoder_layers)
    inputs = encoder_inputs()
    ids = torch.from_numpy(inputs["input_ids"].astype(np.int64))
    with torch.no_grad():
        reference = module(ids).numpy()

    def torch_call():
        with torch.no_grad():
            module(ids)
    runners = {"pytorch": torch_call}
    snrs = {}
    for precision, path in paths.items():
        loaded = load(path)
        run = evaluator_for(loaded)
        name = "evaluator " + precision
        runners[name] = (lambda run=run, loaded=loaded: run(loaded, inputs))
        out = next(iter(run(loaded, inputs).values()))
        snrs[name] = snr_db(np.asarray(out, np.float32), reference)
    torch_call()
    times, cold, errors = interleaved(runners, max(3, args.repeat // 3))
    print()
    params = sum(p.numel() for p in module.parameters())
    print("encoder: {} layers, d {}, {} tokens, {:.0f} M parameters — median of {} interleaved "
          "rounds, load average {}".format(args.encoder_layers, ENCODER["d"], ENCODER["tokens"],
                                           params / 1e6, max(3, args.repeat // 3),
                                           load_average()))
    print_rows([("pytorch eager (fp32)", "pytorch", None, None),
                ("evaluator fp32 program / pytorch", "evaluator fp32", "pytorch", GOAL_ENC32),
                ("evaluator fp16 program / pytorch", "evaluator fp16", "pytorch", GOAL_ENC16)],
               times, cold)
    for name, snr in snrs.items():
        print("  SNR {} vs pytorch: {:.1f} dB".format(name, snr))
    for name, reason in errors.items():
        print("  failed {}: {}".format(name, reason))
    for precision, path in paths.items():
        rss = measure_rss(path)
        if rss is None:
            continue
        ratio = rss["growth"] / rss["weights"]
        print("  peak RSS growth, {} (fresh process, load + 1 run): {:.0f} MB = {:.2f}x the "
              "{:.0f} MB of weights on disk{}".format(
                  precision, rss["growth"] / 1e6, ratio, rss["weights"] / 1e6,
                  "  (goal {:.1f}: {})".format(GOAL_RSS, verdict(ratio, GOAL_RSS))
                  if precision == "fp32" else ""))
    return 0


def measure_rss(path):
    command = [sys.executable, "-m", "bench.evaluator_speed", "--rss-child", path]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        print("  RSS child failed: {}".format(done.stderr.strip().splitlines()[-1:]))
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_child(path):
    """In a fresh process: RSS growth from before loading ``path`` to the peak of load + run."""
    import numpy as np  # noqa: F401 — imported before the baseline
    from coreml_reference.loader import load
    import coreml_reference.mlprogram  # noqa: F401
    before = _status_kb("VmRSS")
    loaded = load(path)
    evaluator_for(loaded)(loaded, encoder_inputs())
    peak = _status_kb("VmHWM")     # this process's own peak (ru_maxrss keeps the parent's
                                   # RSS at fork across exec)
    weights = sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(path)
                  for f in names if f.endswith(".bin"))
    print(json.dumps({"growth": (peak - before) * 1024, "weights": weights}))
    return 0


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError("no {} in /proc/self/status".format(field))


if __name__ == "__main__":
    sys.exit(main())
