"""Benchmark converted models: accuracy against PyTorch, static facts, latency on this host
and — on macOS — on real Core ML per compute unit. ``bench.run.run_bench`` drives it;
``bench.results`` owns the results file; ``bench.report`` renders the published tables."""
