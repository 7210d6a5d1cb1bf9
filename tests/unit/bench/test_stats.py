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


SMALL = dict(stats.MODELBENCH, rounds=2, inferences_per_round=6, trim_low=2, trim_high=1)


def test_modelbench_trims_each_round_then_averages_round_means():
    # round 1 sorted 1..6 ms: drop 1, 2 (low) and 6 (high) -> mean(3, 4, 5) = 4
    # round 2 sorted 10..60 ms: drop 10, 20 and 60 -> mean(30, 40, 50) = 40
    rounds = [[x / 1000.0 for x in [6, 1, 5, 2, 4, 3]],
              [x / 1000.0 for x in [60, 10, 50, 20, 40, 30]]]
    block = stats.summarize_rounds_ms(rounds, SMALL)
    assert block["round_means"] == [4.0, 40.0]
    assert block["mean"] == 22.0
    assert block["runs"] == 6                       # 3 kept of each round
    assert block["min"] == 3.0 and block["max"] == 50.0
    assert block["median"] == 17.5                  # kept: 3 4 5 30 40 50
    assert block["protocol"] == SMALL


def test_modelbench_defaults_are_apples():
    assert (stats.MODELBENCH["rounds"], stats.MODELBENCH["inferences_per_round"],
            stats.MODELBENCH["warmup_per_round"], stats.MODELBENCH["trim_low"],
            stats.MODELBENCH["trim_high"]) == (20, 50, 1, 10, 10)
    assert stats.protocol_text(stats.MODELBENCH) == (
        "ModelBench: 20 rounds x 50 after 1 warm-up, 10 lowest + 10 highest of each round dropped")


def test_a_round_too_short_to_trim_is_refused():
    import pytest
    with pytest.raises(ValueError, match="cannot drop"):
        stats.summarize_rounds_ms([[0.001, 0.002, 0.003]], SMALL)


def test_time_rounds_calls_warmup_and_timed_predictions_per_round():
    calls = []
    block = stats.time_rounds(lambda: calls.append(1), SMALL)
    assert len(calls) == 2 * (1 + 6)
    assert len(block["round_means"]) == 2 and block["runs"] == 6
