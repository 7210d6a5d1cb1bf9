"""bench.plots: each picture answers one question, every label can be read, and no bar is cut
without a mark and its true value."""
import math

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from bench import plots  # noqa: E402

UNITS = ("CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE", "ALL")


def result(snr):
    return {"outputs": {"y": {"snr_db": snr, "max_abs_error": 0.0, "nonfinite": 0}}}


def row(snr=80.0, ms=12.0, coreml=None):
    units = coreml or {cu: {"not_measured": "needs macOS"} for cu in UNITS}
    return {"status": "ok", "reference": {"fp32": result(snr), "fp16": result(snr),
                                          "latency": {"median": ms, "p90": ms, "min": ms}},
            "coreml": {"compute_units": units}}


def host(name, rows, os_name="Linux"):
    return {"host": {"name": name, "os": os_name, "cpu": "x"}, "rows": {"m": rows},
            "baselines": {"m": {"pytorch_cpu": {"median": 5.0, "p90": 5.0, "min": 5.0}}}}


def texts(ax):
    return [t.get_text() for t in ax.texts]


def cut_marks(ax):
    return [line for line in ax.lines if line.get_gid() == plots.CUT_GID]


def drawn(panel):
    fig, ax = plt.subplots()
    plots.draw_bars(ax, panel)
    return fig, ax


def test_a_value_above_the_cap_is_cut_with_a_mark_and_its_true_value():
    panel = plots.Panel("m", ["a", "b"], [80.0, 163.4], [None, None], "dB", cap=150.0)
    fig, ax = drawn(panel)
    widths = [p.get_width() for p in ax.patches]
    assert widths == [80.0, 150.0]                     # drawn to the axis end, no further
    assert cut_marks(ax)                               # ... with a visible break mark
    assert any("163.4 dB" in t and "cut" in t for t in texts(ax))
    assert "80.0 dB" in texts(ax)
    plt.close(fig)


def test_an_exact_match_is_cut_and_named_inf():
    fig, ax = drawn(plots.Panel("m", ["a"], [math.inf], [None], "dB", cap=150.0))
    assert cut_marks(ax) and any(t.startswith("inf dB (exact)") for t in texts(ax))
    plt.close(fig)


def test_nothing_is_cut_below_the_cap():
    fig, ax = drawn(plots.Panel("m", ["a", "b"], [10.0, 149.0], [None, None], "dB", cap=150.0))
    assert not cut_marks(ax) and not any("cut" in t for t in texts(ax))
    plt.close(fig)


def test_a_missing_figure_says_why_and_inf_nan_is_named():
    fig, ax = drawn(plots.Panel("m", ["a", "b"], [None, -math.inf], ["conversion failed at convert", None],
                                "dB", cap=150.0))
    assert "conversion failed at convert" in texts(ax) and "inf/NaN in an output" in texts(ax)
    assert [p.get_width() for p in ax.patches] == [0, 0]
    plt.close(fig)


def test_latency_bars_are_whole_unless_one_dwarfs_the_rest():
    assert plots._outlier_cap([120.0, 306.0, 394.0]) is None     # PANNs V1 v9 at 306 ms stays 306
    cap = plots._outlier_cap([1.0, 1.2, 0.9, 1.1, 50.0])
    assert cap == pytest.approx(11.0)
    fig, ax = drawn(plots.Panel("m", list("abcde"), [1.0, 1.2, 0.9, 1.1, 50.0], [None] * 5, "ms", cap))
    assert cut_marks(ax) and any("50 ms" in t and "cut" in t for t in texts(ax))
    plt.close(fig)


def test_horizontal_bars_with_one_label_per_bar():
    labels = ["v3", "v3+fp16w", "v9-export+prune50", "et", "coreai"]
    fig, ax = drawn(plots.Panel("m", labels, [1.0] * 5, [None] * 5, "ms"))
    assert [t.get_text() for t in ax.get_yticklabels()] == labels     # one row label per bar
    assert len(ax.patches) == len(labels)
    assert all(p.get_height() < 1.0 for p in ax.patches)             # bars along x: horizontal
    assert ax.get_xticklabels()[0].get_text() in ("", "0", "0.0")    # numbers, not names, on x
    plt.close(fig)


def test_write_all_three_pictures_and_the_device_one_says_it_needs_a_mac(tmp_path):
    hosts = [host("vm", {"v3": row(95.0, 120.0), "v9": row(math.inf, 306.0)})]
    written = plots.write_all(hosts, ["m"], str(tmp_path), artifacts={"m": ["v3", "v9", "et"]},
                              notes={("m", "et"): "conversion failed at export"})
    assert [name for _, name in written] == ["accuracy.png", "latency.png", "evaluator-speed.png"]
    for _, name in written:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid, message = plots.device_panels(hosts, ["m"], {"m": ["v3", "v9"]}, {})
    assert grid is None and message[0] == "not measured: needs macOS"
    grid, _ = plots.evaluator_panels(hosts, ["m"], {"m": ["v3", "v9", "et"]},
                                     {("m", "et"): "conversion failed at export"})
    (panel,) = grid[0]
    assert panel.values == [120.0, 306.0, None] and panel.reasons[2] == "conversion failed at export"
    assert "vm" in panel.title and [label for label, _ in panel.lines] == ["PyTorch eager CPU (same host)"]
    grid, _ = plots.accuracy_panels(hosts, ["m"], {"m": ["v3", "v9", "et"]}, {})
    assert [p.values for p in grid[0]] == [[95.0, math.inf, None]] * 2
    assert grid[0][0].reasons[2].startswith("not benchmarked on vm")


def test_device_latency_is_drawn_once_a_mac_measured_it():
    measured = {cu: {"latency": {"mean": 3.0, "min": 2.0, "max": 4.0, "protocol": {}},
                     "accuracy": {"y": {"snr_db": 70.0, "max_abs_error": 0.0}}, "load_seconds": 0.1}
                for cu in UNITS}
    hosts = [host("vm", {"v9": row()}), host("mac", {"v9": row(coreml=measured)}, "macOS 15")]
    grid, message = plots.device_panels(hosts, ["m"], {"m": ["v9"]}, {})
    assert message is None
    assert [p.title for p in grid[0]] == ["m: Core ML {} on mac".format(cu) for cu in UNITS]
    assert all(p.values == [3.0] for p in grid[0])
