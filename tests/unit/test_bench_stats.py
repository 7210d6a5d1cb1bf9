from bench import stats


def test_median_p90_min_on_known_lists():
    # 10 samples 1..10 ms: median (5+6)/2, nearest-rank p90 = 9th smallest, min 1
    block = stats.summarize_ms([x / 1000.0 for x in [7, 3, 1, 10, 2, 9, 4, 8, 6, 5]], warmup=2)
    assert block["unit"] == "ms"
    assert block["median"] == 5.5
    assert block["p90"] == 9.0
    assert block["min"] == 1.0
    assert block["runs"] == 10 and block["warmup"] == 2


def test_odd_count_and_single_sample():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.percentile([4.0], 90) == 4.0
    # 5 samples: ceil(0.9 * 5) = 5th smallest
    assert stats.percentile([5.0, 1.0, 4.0, 2.0, 3.0], 90) == 5.0


def test_time_calls_runs_warmup_untimed_then_repeat():
    calls = []
    block = stats.time_calls(lambda: calls.append(1), repeat=4, warmup=3)
    assert len(calls) == 7
    assert block["runs"] == 4 and block["warmup"] == 3
    assert 0.0 <= block["min"] <= block["median"] <= block["p90"]
