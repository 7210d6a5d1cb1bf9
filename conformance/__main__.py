"""python -m conformance [--suite full|ci] [--out results] [--fail-under PCT] [-k EXPR] [--jobs N]

Runs coremltools' shipped op and layer tests (see ``suite``) in a child pytest process with
``MLModel.predict`` answered by ``coreml_reference`` (``plugin``), then writes
<out>/conformance.{json,md} (``--suite ci``: conformance-ci.{json,md}).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from conformance import report, suite


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Run coremltools 9.0's own MIL-op and NeuralNetwork-layer tests against "
                    "coreml_reference and count the outcomes per test class.")
    parser.add_argument("--suite", choices=sorted(suite.SUITES), default="full",
                        help="full: the curated suite (tox -e conformance); ci: the fixed CI subset")
    parser.add_argument("--out", default="results", help="folder for conformance.{json,md}")
    parser.add_argument("--no-fp32", action="store_true",
                        help="leave out the sharp fp32 ML Program variants")
    parser.add_argument("--fail-under", type=float, default=None, metavar="PCT",
                        help="exit 1 if the default-tolerance pass rate is below PCT percent")
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k expression")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="pytest processes, each given whole test files (default 1)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        paths = suite.test_paths(args.suite)
    except RuntimeError as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    missing = [p for p in paths if not os.path.exists(suite.file_of(p))]
    if missing:
        print("error: coremltools' shipped test file {} is missing (the suite needs the "
              "coremltools 9.0 wheel)".format(missing[0]), file=sys.stderr)
        return 2
    import coremltools
    root = suite.coremltools_root()
    env = dict(os.environ)
    env["INCLUDE_MIL_FP32_UNIT_TESTS"] = "0" if args.no_fp32 else "1"
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
    keyword = " and ".join("({})".format(k) for k in (suite.KEYWORDS.get(args.suite), args.keyword) if k)
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        runs = []
        start = time.perf_counter()
        for i, shard in enumerate(suite.shards(paths, max(1, args.jobs))):
            records_path = os.path.join(tmp, "records-{}.jsonl".format(i))
            command = [sys.executable, "-m", "pytest", "-p", "conformance.plugin", "-p",
                       "no:terminal", "-p", "no:cacheprovider", "--rootdir", root, "-c",
                       os.devnull, "-W", "ignore"] + shard + (["-k", keyword] if keyword else [])
            # Its own process: a converter that segfaults ends that shard, not the report.
            child = subprocess.Popen(command, env=dict(env, CONFORMANCE_RECORDS=records_path),
                                     cwd=tmp, stdout=subprocess.DEVNULL)
            runs.append((child, records_path))
        codes = follow(runs)
        seconds = time.perf_counter() - start
        records, collected = [], 0
        for _, records_path in runs:
            if os.path.exists(records_path):
                shard_records, shard_collected = report.read_records(records_path)
                records += shard_records
                collected = None if shard_collected is None or collected is None \
                    else collected + shard_collected
    # The exit code that tells most: a crash or interruption before "tests failed" (1).
    code = max(codes, key=lambda c: (c not in (0, 1), c != 0))
    if not records:
        print("error: the test run recorded no tests (pytest exit code {})".format(code),
              file=sys.stderr)
        return 2
    shown = "python -m conformance --suite {}{}".format(args.suite, " --no-fp32" if args.no_fp32 else "")
    if args.jobs > 1:
        shown += " --jobs {}".format(args.jobs)
    if args.keyword:
        shown += " -k {!r}".format(args.keyword)
    meta = {"coremltools": coremltools.__version__, "suite": args.suite, "command": shown,
            "fp32_variants": not args.no_fp32, "seconds": round(seconds, 1), "keyword": keyword,
            "host": "{} {}, Python {}".format(platform.system(), platform.machine(),
                                              platform.python_version()),
            "pytest_exit_code": code, "collected": collected}
    data = report.summarize(records, meta)
    stem = "conformance" if args.suite == "full" else "conformance-" + args.suite
    for path in report.write(data, args.out, stem):
        print("wrote " + path)
    for name, entry in data["summary"].items():
        print("{:8s} {:5d} tests, {:5d} reach predict: pass {}, numerical {}, raised {}, "
              "timed out {}; pass rate {}".format(
                  name, entry["tests"], entry["reached_predict"], entry["pass"], entry["numerical"],
                  entry["raised"], entry["timeout"], report._pct(entry["pass_rate"])))
    if code not in (0, 1):
        print("warning: pytest ended with exit code {} after {} tests".format(code, len(records)),
              file=sys.stderr)
    rate = data["summary"]["default"]["pass_rate"]
    if args.fail_under is not None and (rate is None or 100 * rate < args.fail_under):
        print("conformance: default-tolerance pass rate {} is below {} %".format(
            report._pct(rate), args.fail_under), file=sys.stderr)
        return 1
    return 0


def follow(runs, every=100):
    """Wait for the pytest children [(process, records path)], showing progress from their
    records files: a tqdm bar on a terminal, a plain line every ``every`` tests otherwise.
    Returns their exit codes."""
    bar, shown, counts = None, 0, {}
    offsets, totals = [0] * len(runs), [None] * len(runs)
    while True:
        codes = [child.poll() for child, _ in runs]
        items = []
        for i, (_, records_path) in enumerate(runs):
            if not os.path.exists(records_path):
                continue
            with open(records_path) as f:
                f.seek(offsets[i])
                chunk = f.read()
            complete = chunk[:chunk.rfind("\n") + 1]
            offsets[i] += len(complete)
            for line in complete.splitlines():
                item = json.loads(line)
                if "collected" in item:
                    totals[i] = item["collected"]
                else:
                    items.append(item)
        total = sum(totals) if None not in totals else None
        for item in items:
            kind = report.classify(item)
            counts[kind] = counts.get(kind, 0) + 1
            shown += 1
            summary = " ".join("{}={}".format(k, v) for k, v in sorted(counts.items()))
            if bar is None and total is not None and sys.stderr.isatty():
                from tqdm import tqdm
                bar = tqdm(total=total, initial=shown - 1, unit="test", file=sys.stderr,
                           dynamic_ncols=True)
            if bar is not None:
                bar.set_postfix_str(summary, refresh=False)
                bar.update(1)
            elif shown % every == 0 or shown == total:
                print("conformance: {}/{} tests  {}".format(shown, total or "?", summary),
                      file=sys.stderr, flush=True)
        if None not in codes:
            if bar is not None:
                bar.close()
            return codes
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
