"""``coreml-routes compare``: every route on one model, and which one to ship."""
from __future__ import annotations

import argparse
import os
import sys
import time

HELP = """\
Convert one model by every route (each in its own pinned toolchain and process), verify
each result against PyTorch with the reference evaluator at fp32, evaluate it at emulated
fp16 (GPU / Neural Engine arithmetic), print one table and recommend the route to ship,
with the reasons, and why not for every other route.

writes DIR/<model>/compare.json, DIR/<model>/compare.md, and the models in
DIR/<model>/<route>/ as `convert` writes them. A run that recommends nothing never replaces
a compare.json that recommends a route: it writes compare.failed.json / .md beside it.
Exit 0 a route is recommended, 1 none works (every reason printed), 2 bad input.
"""


def register(subparsers):
    import backends
    from backends.variants import SUMMARIES as VARIANTS
    from compare.rules import RULES, TARGETS
    from coreml_routes import model_args
    p = subparsers.add_parser(
        "compare", help="convert by every route and recommend one", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="rules, in order:\n" + "\n".join("  {}. {}".format(i, r) for i, r in enumerate(RULES, 1)))
    model_args.add_arguments(p)
    p.add_argument("--routes", metavar="R,R", default=",".join(backends.all_routes()),
                   help="routes to compare, comma-separated (default: all: {})".format(
                       ",".join(backends.all_routes())))
    p.add_argument("--min-target", choices=TARGETS, metavar="iOSNN",
                   help="oldest OS you must support: {} (a route whose model needs a newer one "
                        "is not recommended)".format("|".join(TARGETS)))
    p.add_argument("--hooks", metavar="FILE", action="append", default=[],
                   help="conversion hooks file, as for convert; repeatable")
    p.add_argument("--out", default="build", metavar="DIR", help="output root (default: build)")
    p.add_argument("--variants", metavar="V,V", default="",
                   help="also convert these variants where a route offers them, as `convert "
                        "--precision/--compress` would ({}; 'all': every one)".format(
                            ", ".join(VARIANTS)))
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="routes converting at once, each its own process (default 2)")
    p.set_defaults(run=run)


def run(args) -> int:
    import tempfile
    import backends
    from compare import jobs_of, run_compare
    from compare.table import render
    from coreml_routes import model_args
    from coreml_routes.commands.convert import checked_hooks
    from coreml_routes.errors import UserError

    names = [r.strip() for r in args.routes.split(",") if r.strip()]
    chosen = [backends.get(r) for r in names]
    if not chosen:
        raise UserError("--routes names no route")
    from backends.variants import SUMMARIES
    variants = list(SUMMARIES) if args.variants == "all" else \
        [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in SUMMARIES]
    if unknown:
        raise UserError("unknown variant {!r}; variants: {}".format(unknown[0], ", ".join(SUMMARIES)))
    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    hooks = checked_hooks(args)
    from coreml_routes.out_dir import checked_out_root
    out_root = checked_out_root(args.out)
    with tempfile.TemporaryDirectory(prefix="coreml-routes-") as tmp:
        request = model_args.resolve(args, tmp)
        doc = run_compare(request, chosen, out_root, tmp,
                          hooks=hooks,
                          min_target=args.min_target, progress=_progress(len(jobs_of(chosen, variants))),
                          jobs=args.jobs, variants=variants)
        start = time.perf_counter()
        locate_divergences(doc, request, hooks, tmp, lambda text: print(text, file=sys.stderr))
        doc["seconds"] = round(doc["seconds"] + time.perf_counter() - start, 1)
    from compare.publish import publish
    path, kept = publish(os.path.join(out_root, request.name), doc)   # never a failed run over a recommendation
    print(render(doc))
    print("\nwrote {} and {}.md ({:.0f} s)".format(
        os.path.join(args.out, request.name, os.path.basename(path)),
        os.path.basename(path)[:-len(".json")], doc["seconds"]))
    if kept:
        print(kept)
    return 0 if doc["recommended"] else 1


def locate_divergences(doc, request, hooks, tmp, progress):
    """Where each fp32 route that diverges first departs from PyTorch, found as ``diagnose``
    finds it, on the route's worst case: compare then names the layer (a v3 ``unary`` LOG
    with its epsilon), not just the output. Only routes that compute in fp32 (an fp16-typed
    program's divergence is fp16's, which the fp16 column locates) and PyTorch models (an ONNX
    file's reference values are onnxruntime's for its own inputs); costs one more conversion
    of each such route, and only when one diverges."""
    import backends
    from backends.builds import Case, read_cases, write_cases_file
    from backends.sources import ONNX
    from diagnose import diagnose
    from pipeline.conversions import single_route_python
    from pipeline.envs import child_env
    if request.source.kind == ONNX:
        return
    for name, row in doc["routes"].items():
        verified = row.get("verified") or {}
        if (row.get("status") != "ok" or row.get("variant") or verified.get("status") != "diverges"
                or row.get("precision") != "fp32"
                or any(c.get("steps") for c in verified.get("cases") or [verified])):
            continue
        case = verified.get("worst_case") or "example"
        progress("{}: diverges on case {}; searching for the first divergent layer".format(name, case))
        inputs = os.path.join(tmp, "locate-{}.npz".format(name))
        worst = next(c for c in read_cases(row["folder"]) if c.label == case)
        write_cases_file(inputs, [Case(case, worst.inputs, {})])
        backend = backends.get(name)
        try:
            result = diagnose(single_route_python(backend, request), name, request.source.spec,
                              os.path.join(tmp, "locate"), request.samples,
                              weights=request.weights_npz, hooks=hooks, env=child_env(),
                              name=request.name, inputs=inputs, outputs=request.outputs)
            row["first_divergent_layer"] = located_words(result, case)
        except Exception as error:      # noqa: BLE001 — the verdict stands; keep the compare
            lines = str(error).strip().splitlines() or [""]
            row["first_divergent_layer"] = "first divergent layer not located: {}: {}".format(
                type(error).__name__, lines[0])
        row["why_not"] = "{}; {}".format(row.get("why_not"), row["first_divergent_layer"])


def located_words(result, case):
    """One phrase for a diagnosis: the layer, its type and parameters, or its verdict."""
    layer = result.get("layer")
    if not layer:
        return "on case {}, diagnose finds: {}".format(case, result.get("verdict"))
    params = " ({})".format(layer["params"]) if layer.get("params") else ""
    return "first divergent layer on case {}: {} {!r}{}".format(case, layer.get("type"),
                                                                 layer.get("name"), params)


def _progress(total):
    """A progress line per step on stderr: rewritten in place on a terminal, plain lines
    otherwise (logs, CI)."""
    state = {"done": 0}
    tty = sys.stderr.isatty()

    def step(what):
        state["done"] += 1
        text = "[{}/{}] {}".format(state["done"], total, what)
        sys.stderr.write(("\r\033[K" + text) if tty else text + "\n")
        if tty and state["done"] == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return step
