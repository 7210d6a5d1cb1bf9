"""How fast is the numpy reference evaluator, next to PyTorch eager and onnxruntime?

    python -m bench.evaluator_speed [--models M ...] [--build DIR] [--repeat N] [--threads T]
                                    [--encoder] [--encoder-only] [--encoder-dir DIR]
                                    [--decoder] [--decoder-only] [--decoder-layers N]

Prints ratios measured side by side in one run: every runner of a table is called in turn,
round after round (interleaved), so all of them see the same machine load, in an order
shuffled each round (a call pays for what the one before it left in the caches and on the
other core: in a fixed order, one small program took 0.37 ms where its twins took 0.13 ms,
by its place alone); ratios are of medians (the fastest round is shown too: PyTorch's
2-thread pool degrades under load).
Models are loaded once before timing (decoding weights is part of loading, as for a runtime);
the first, cold evaluation is shown apart. The thread counts used (torch, numpy's BLAS,
onnxruntime) and the load average before / after are printed with the figures; neither
PyTorch's OpenMP pool nor onnxruntime's spins between calls (it would take a core from the
runner timed next). Times are in milliseconds.

Zoo (``--models``, default pann_mobilenetv1): PyTorch eager (``zoo.get(name).build()``, fp32,
no grad) against the evaluator on every route's model under ``DIR/<model>/<route>/`` (v3, v4,
v9, v9-export, and et's Core ML partition when its program is delegated whole), on that
route's golden inputs; coreai's interpreter is Apple's, not timed here. ML Programs run as
typed: an fp16-typed program (coremltools' default) is emulated by rounding to float16 where
the program says so.
Goals: same precision as PyTorch <= 1.0x; fp16-typed programs <= 1.2x. For v3, the evaluator
on model.mlmodel against onnxruntime on the route's own model.onnx: goal <= 2x.

Encoder (``--encoder``; builds and converts once, minutes, cached in ``--encoder-dir``): a
BERT-base-sized encoder (token + position embeddings, 12 layers each with its own weights,
d 768, 12 heads, FFN 3072, 128 tokens; ~108 M parameters), seeded weights, ``torch.export`` ->
coremltools at fp32 and fp16. Goals <= 1.2x (fp32), <= 1.5x (fp16); peak RSS growth of a fresh
process that loads and runs the fp32 model <= 1.5x its weights on disk.

Decoder (``--decoder``; the same way, cached in ``--decoder-dir``; converting 16 layers takes
minutes and several GB): a decoder-only layer stack of a 1 B-parameter LLM's size (16 layers,
d 2048, 16 heads, SwiGLU 8192, RMSNorm, causal attention; no embeddings: hidden states
[1, 128, 2048] in and out; 1.07 B parameters, 4.3 GB at fp32). Issue 23 asks for its figure, no
goal. ``--decoder-layers N`` for a quick look. ``--encoder-only`` / ``--decoder-only`` skip the
zoo.
"""
from __future__ import annotations

import argparse
import json
import os
import random
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
DECODER = dict(tokens=128, d=2048, heads=16, ffn=8192, layers=16, seed=0)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    threads = args.threads or os.cpu_count() or 1
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)     # read by numpy's BLAS when first imported
    # PyTorch's OpenMP threads spin after each call by default, taking a core from the runner
    # timed next (the evaluator on v3 PANNs V1: 12.2 ms median after PyTorch, 8.8 ms with
    # them asleep); onnxruntime's spinning is turned off the same way (ort_runner).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.rss_child:
        return rss_child(args.rss_child, args.rss_stack)
    import torch
    torch.set_num_threads(threads)
    print("threads: torch {} (OMP_WAIT_POLICY={}), numpy BLAS {}, onnxruntime intra-op {} "
          "(inter-op 1, no spinning); os.cpu_count() {}".format(
              torch.get_num_threads(), os.environ["OMP_WAIT_POLICY"], blas_threads(), threads,
              os.cpu_count()))
    print("load average before: {}".format(load_average()))
    status = 0
    if not (args.encoder_only or args.decoder_only):
        for model in args.models:
            status |= zoo_table(args, model, threads)
    if args.encoder or args.encoder_only:
        status |= stack_table(args, "encoder", args.encoder_layers, args.encoder_dir)
    if args.decoder or args.decoder_only:
        status |= stack_table(args, "decoder", args.decoder_layers, args.decoder_dir)
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
                         "coreml-routes", "bench-{}")
    parser.add_argument("--encoder-dir", default=cache.format("encoder"),
                        help="where the converted encoder is kept (default: {})".format(
                            cache.format("encoder")))
    parser.add_argument("--encoder-layers", type=int, default=ENCODER["layers"],
                        help="encoder layers (default 12; fewer for a quick look)")
    parser.add_argument("--decoder", action="store_true",
                        help="also the 1 B-parameter decoder layer stack (first run converts it: "
                             "minutes, several GB of memory)")
    parser.add_argument("--decoder-only", action="store_true",
                        help="only the decoder (with --encoder / --encoder-only: both stacks)")
    parser.add_argument("--decoder-dir", default=cache.format("decoder"),
                        help="where the converted decoder is kept (default: {})".format(
                            cache.format("decoder")))
    parser.add_argument("--decoder-layers", type=int, default=DECODER["layers"],
                        help="decoder layers (default 16; fewer for a quick look)")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--rss-stack", default="encoder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import zoo
    unknown = [m for m in args.models if m not in zoo.MODELS]
    if unknown:                                    # argparse's one line, exit 2
        parser.error("unknown model {!r} for --models; known: {}".format(
            unknown[0], ", ".join(zoo.MODELS)))
    if args.repeat < 1 or args.threads < 0:
        parser.error("--repeat must be at least 1 and --threads at least 0 (0: every core)")
    return args


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
    order, shuffle = list(runners), random.Random(0).shuffle
    for _ in range(repeat):
        shuffle(order)        # a runner's cost depends on the one before it: vary that
        for name in order:
            times[name].append(timed(runners[name]))
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
    kernels = blas.kernels_name()
    if kernels and os.environ.get("OPENBLAS_CORETYPE"):
        kernels += ", as OPENBLAS_CORETYPE sets"
    return ("{} (the evaluator: 1 for products under {} k multiply-adds, or while more "
            "threads are runnable than cores; OpenBLAS kernels: {})".format(
                configured, blas.SMALL_MACS // 1000, kernels or "unknown"))


def verdict(ratio, goal):
    return "ok" if ratio <= goal else "MISSED"


def print_rows(rows, times, cold):
    """rows: (label, runner name, reference runner name or None, goal or None)."""
    medians = {name: statistics.median(t) for name, t in times.items()}
    width = max([40] + [len(label) for label, *_ in rows])      # long variant names
    line = "  {:<" + str(width) + "} {:>10} {:>10} {:>10} {:>8} {:>6}  {}"
    print(line.format("runner", "median ms", "min ms", "cold ms", "ratio", "goal", ""))
    for label, name, ref, goal in rows:
        if name not in medians:
            continue
        ratio = medians[name] / medians[ref] if ref in medians else None
        print(line.format(
            label, "{:.3f}".format(1e3 * medians[name]), "{:.3f}".format(1e3 * min(times[name])),
            "{:.3f}".format(1e3 * cold.get(name, float("nan"))),
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
        if os.path.exists(os.path.join(folder, route, "model.aimodel")):
            skipped.append((route, "an .aimodel: Apple's Core AI interpreter checks it, not "
                                   "this evaluator"))
            continue
        if artifact is None or not os.path.exists(golden):
            skipped.append((route, "no .mlmodel / .mlpackage (nor an ExecuTorch program in one "
                                   "Core ML partition) with golden.npz: not timed here"))
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
    return whole_partition(route_dir)


def whole_partition(route_dir):
    """The Core ML partition of an ExecuTorch program delegated whole (one partition, no op
    outside it): the evaluator on it is what verifying route et costs on Linux."""
    parts = builds.partition_paths(route_dir)
    facts = (builds.read_json(builds.record_path(route_dir)) or {}).get("executorch") or {}
    if len(parts) == 1 and facts.get("partitions") == 1 and not facts.get("not_delegated"):
        return parts[0]
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
    options.log_severity_level = 3                 # not its unused-initializer warnings
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {}
    for i in session.get_inputs():
        value = np.asarray(inputs[i.name])
        feeds[i.name] = value.astype(np.float32) if i.type == "tensor(float)" else value

    def call():
        session.run(None, feeds)
    return call


# --- seeded transformer stacks: the encoder and the decoder -------------------------------------
# Built by the benchmark (seeded weights), exported with torch.export and converted by
# coremltools 9 at fp32 and fp16 once, cached; then timed like the zoo against PyTorch eager.

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
            att = self_attention(self.qkv(x), cfg["heads"])
            x = self.norm1(x + self.out(att))
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

    return seeded(Encoder, cfg["seed"], skip=("positions",))


def decoder_module(layers, cfg=None):
    """A decoder-only layer stack shaped like a 1 B-parameter LLM's (Llama 3.2 1B: d 2048,
    16 layers, SwiGLU 8192; here with full multi-head attention), without embeddings: hidden
    states in, hidden states out. Pre-norm RMSNorm, causal self-attention (fused q/k/v, no bias,
    an additive -3e4 mask that float16 holds), SwiGLU MLP, a final RMSNorm."""
    import torch
    from torch import nn
    cfg = cfg or DECODER
    d, ffn = cfg["d"], cfg["ffn"]

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = RMSNorm()
            self.qkv = nn.Linear(d, 3 * d, bias=False)
            self.out = nn.Linear(d, d, bias=False)
            self.norm2 = RMSNorm()
            self.gate = nn.Linear(d, ffn, bias=False)
            self.up = nn.Linear(d, ffn, bias=False)
            self.down = nn.Linear(ffn, d, bias=False)

        def forward(self, x, mask):
            x = x + self.out(self_attention(self.qkv(self.norm1(x)), cfg["heads"], mask))
            y = self.norm2(x)
            return x + self.down(torch.nn.functional.silu(self.gate(y)) * self.up(y))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([Layer() for _ in range(layers)])
            self.norm = RMSNorm()
            self.register_buffer("mask", torch.full((cfg["tokens"], cfg["tokens"]), -3e4).triu(1))

        def forward(self, hidden_states):
            x = hidden_states
            for layer in self.layers:
                x = layer(x, self.mask)
            return self.norm(x)

    return seeded(Decoder, cfg["seed"])


def self_attention(qkv, heads, mask=None):
    """Multi-head attention of fused q/k/v projections [b, t, 3d] -> [b, t, d]."""
    import torch
    b, t, d3 = qkv.shape
    d = d3 // 3
    q, k, v = qkv.reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / (d // heads) ** 0.5)
    if mask is not None:
        scores = scores + mask
    att = torch.matmul(torch.softmax(scores, dim=-1), v)
    return att.permute(0, 2, 1, 3).reshape(b, t, d)


def seeded(cls, seed, skip=()):
    """``cls()`` in eval mode, its matrices drawn from N(0, 0.02) (BERT / GPT-like init)."""
    import torch
    torch.manual_seed(seed)
    module = cls().eval()
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2 and not any(s in name for s in skip):
                p.normal_(0.0, 0.02)
    return module


def encoder_inputs():
    import numpy as np
    rng = np.random.default_rng(ENCODER["seed"])
    return {"input_ids": rng.integers(0, ENCODER["vocab"], (1, ENCODER["tokens"]), dtype=np.int32)}


def decoder_inputs(cfg=None):
    """Hidden states [1, tokens, d] ~ N(0, 1), standing for embedded tokens."""
    import numpy as np
    cfg = cfg or DECODER
    rng = np.random.default_rng(cfg["seed"])
    return {"hidden_states": rng.standard_normal((1, cfg["tokens"], cfg["d"]), dtype=np.float32)}


def decoder_parameters(layers, cfg=None):
    """Parameters of ``decoder_module(layers)``: per layer q/k/v/out, SwiGLU and two norms."""
    cfg = cfg or DECODER
    d, ffn = cfg["d"], cfg["ffn"]
    return layers * (4 * d * d + 3 * d * ffn + 2 * d) + d


# name -> how to build it, its inputs, its goals (fp32 program, fp16 program, peak RSS growth of
# the fp32 model / its weights; None: a figure without a goal) and its title's facts.
STACKS = {
    "encoder": dict(module=encoder_module, inputs=encoder_inputs, cfg=ENCODER,
                    goals=(GOAL_ENC32, GOAL_ENC16, GOAL_RSS)),
    "decoder": dict(module=decoder_module, inputs=decoder_inputs, cfg=DECODER,
                    goals=(None, None, None)),
}


def torch_inputs(inputs):
    """numpy inputs as torch tensors (integer ids as int64, as embeddings take them)."""
    import numpy as np
    import torch
    return [torch.from_numpy(a.astype(np.int64) if a.dtype.kind in "iu" else a)
            for a in inputs.values()]


def build_stack(kind, folder, layers):
    """{precision: .mlpackage path} of ``kind`` with ``layers`` layers, converting what is not in
    ``folder`` yet: one export, then fp32 and fp16 one after the other, each model dropped before
    the next (a 1 B-parameter stack holds 4.3 GB of fp32 weights per copy). Prints each step's
    seconds and the process's peak RSS over the conversion."""
    import gc
    import numpy as np
    import torch
    paths = {p: os.path.join(folder, "{}{}-{}.mlpackage".format(kind, layers, p))
             for p in ("fp32", "fp16")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    import coremltools as ct
    os.makedirs(folder, exist_ok=True)
    reset_peak_rss()
    start = time.perf_counter()
    inputs = STACKS[kind]["inputs"]()
    module = STACKS[kind]["module"](layers)
    exported = torch.export.export(module, tuple(torch_inputs(inputs))).run_decompositions({})
    del module                                     # the exported program holds the weights
    print("{} ({} layers) exported in {:.0f} s".format(kind, layers, time.perf_counter() - start),
          flush=True)
    ct_inputs = [ct.TensorType(name=name, shape=a.shape,
                               dtype=np.int32 if a.dtype.kind in "iu" else np.float32)
                 for name, a in inputs.items()]
    for precision, path in paths.items():
        if os.path.exists(path):
            continue
        step = time.perf_counter()
        print("converting the {} ({} layers) at {} ...".format(kind, layers, precision), flush=True)
        mlmodel = ct.convert(
            exported, inputs=ct_inputs, convert_to="mlprogram",
            minimum_deployment_target=ct.target.iOS16,
            compute_precision=(ct.precision.FLOAT16 if precision == "fp16"
                               else ct.precision.FLOAT32))
        staging = "{}.staging-{}.mlpackage".format(path[:-len(".mlpackage")], os.getpid())
        mlmodel.save(staging)
        os.replace(staging, path)
        del mlmodel                                # and its MIL program's weights
        gc.collect()
        print("  {} converted and saved in {:.0f} s".format(precision, time.perf_counter() - step),
              flush=True)
    del exported
    gc.collect()
    print("{} converted in {:.0f} s; peak RSS of this process {:.1f} GB{}".format(
        kind, time.perf_counter() - start, _status_kb("VmHWM") / 1e6,
        "" if PEAK_RESET else " (since its start)"))
    return paths


def stack_table(args, kind, layers, folder):
    import gc
    paths = build_stack(kind, folder, layers)
    reset_peak_rss()
    timing = _time_stack(args, kind, layers, paths)
    release_plans()
    gc.collect()                                   # the models, before the RSS children
    _, _, goal_rss = STACKS[kind]["goals"]
    print("  peak RSS of this process while timing (PyTorch + both programs loaded): "
          "{:.1f} GB{}".format(timing["peak_kb"] / 1e6, "" if PEAK_RESET else " (since its start)"))
    for precision, path in paths.items():
        rss = measure_rss(path, kind)
        if rss is None:
            continue
        ratio = rss["growth"] / rss["weights"]
        print("  peak RSS growth, {} (fresh process, load + 1 run): {:.0f} MB = {:.2f}x the "
              "{:.0f} MB of weights on disk{}".format(
                  precision, rss["growth"] / 1e6, ratio, rss["weights"] / 1e6,
                  "  (goal {:.1f}: {})".format(goal_rss, verdict(ratio, goal_rss))
                  if precision == "fp32" and goal_rss is not None else
                  "  (float16 weights are held widened to float32 for the arithmetic, decoded "
                  "once: 2x is the floor)" if precision == "fp16" else ""))
    return 0


def _time_stack(args, kind, layers, paths):
    """Times PyTorch eager and the evaluator on both programs, interleaved, and prints the table
    with SNRs; returns the peak RSS (all of them are freed on return)."""
    import numpy as np
    import torch
    from coreml_reference.loader import load
    from coreml_reference.metrics import snr_db
    stack = STACKS[kind]
    module = stack["module"](layers)
    inputs = stack["inputs"]()
    tensors = torch_inputs(inputs)
    with torch.no_grad():
        reference = module(*tensors).numpy()

    def torch_call():
        with torch.no_grad():
            module(*tensors)
    runners = {"pytorch": torch_call}
    snrs = {}
    # fp16 first: widening its float16 weights holds one blob in both forms at a time; loaded
    # before the fp32 program, that moment comes while less else is held.
    for precision, path in sorted(paths.items(), key=lambda item: item[0] != "fp16"):
        loaded = load(path)
        run = evaluator_for(loaded)
        name = "evaluator " + precision
        runners[name] = (lambda run=run, loaded=loaded: run(loaded, inputs))
        out = next(iter(run(loaded, inputs).values()))
        snrs[name] = snr_db(np.asarray(out, np.float32), reference)
    torch_call()
    rounds = max(3, args.repeat // 3)
    times, cold, errors = interleaved(runners, rounds)
    print()
    cfg, params = stack["cfg"], sum(p.numel() for p in module.parameters())
    print("{}: {} layers, d {}, {} heads, FFN {}, {} tokens, {} parameters ({:.2f} GB at fp32)"
          " — median of {} interleaved rounds, load average {}".format(
              kind, layers, cfg["d"], cfg["heads"], cfg["ffn"], cfg["tokens"], count_text(params),
              params * 4 / 1e9, rounds, load_average()))
    goal32, goal16, _ = stack["goals"]
    print_rows([("pytorch eager (fp32)", "pytorch", None, None),
                ("evaluator fp32 program / pytorch", "evaluator fp32", "pytorch", goal32),
                ("evaluator fp16 program / pytorch", "evaluator fp16", "pytorch", goal16)],
               times, cold)
    for precision in paths:
        if "evaluator " + precision in snrs:
            print("  SNR evaluator {} vs pytorch: {:.1f} dB".format(
                precision, snrs["evaluator " + precision]))
    for name, reason in errors.items():
        print("  failed {}: {}".format(name, reason))
    return {"peak_kb": _status_kb("VmHWM")}


def count_text(n):
    """1073809408 -> "1.07 B", 108893184 -> "109 M"."""
    return "{:.2f} B".format(n / 1e9) if n >= 1e9 else "{:.0f} M".format(n / 1e6)


def release_plans():
    """Drop the evaluator's cache of compiled ML Programs (it holds their decoded weights)."""
    try:
        from coreml_reference.mlprogram.program import clear_cache
    except ImportError:                            # an evaluator without that cache
        return
    clear_cache()


def measure_rss(path, kind="encoder"):
    command = [sys.executable, "-m", "bench.evaluator_speed", "--rss-child", path,
               "--rss-stack", kind]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        print("  RSS child failed: {}".format(done.stderr.strip().splitlines()[-1:]))
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_child(path, kind="encoder"):
    """In a fresh process: RSS growth from before loading ``path`` to the peak of load + run."""
    import numpy as np  # noqa: F401 — imported before the baseline
    from coreml_reference.loader import load
    import coreml_reference.mlprogram  # noqa: F401
    inputs = STACKS[kind]["inputs"]()
    before = _status_kb("VmRSS")
    loaded = load(path)
    evaluator_for(loaded)(loaded, inputs)
    peak = _status_kb("VmHWM")     # this process's own peak (ru_maxrss keeps the parent's
                                   # RSS at fork across exec)
    weights = sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(path)
                  for f in names if f.endswith(".bin"))
    print(json.dumps({"growth": (peak - before) * 1024, "weights": weights}))
    return 0


PEAK_RESET = False


def reset_peak_rss():
    """Restart /proc/self/status's VmHWM from the current RSS (Linux >= 4.0)."""
    global PEAK_RESET
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        PEAK_RESET = True
    except OSError:
        PEAK_RESET = False
    return PEAK_RESET


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError("no {} in /proc/self/status".format(field))


if __name__ == "__main__":
    sys.exit(main())
