"""bench.evaluator_speed: runners are timed interleaved (round after round, failures reported
and left out), every ratio line names its goal and whether it is met, hidden staging folders
and artifacts the evaluator cannot open are skipped with a reason."""
import os

from bench import evaluator_speed


def test_interleaved_rounds_and_failures():
    order = []

    def runner(name):
        return lambda: order.append(name)

    def broken():
        raise RuntimeError("no")
    times, cold, errors = evaluator_speed.interleaved(
        {"a": runner("a"), "bad": broken, "b": runner("b"), "c": runner("c")}, repeat=8)
    assert order[:3] == ["a", "b", "c"]                  # cold calls, then interleaved rounds
    rounds = [order[i:i + 3] for i in range(3, len(order), 3)]
    assert len(rounds) == 8 and all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1           # whose turn follows whose varies
    assert sorted(times) == ["a", "b", "c"] and all(len(t) == 8 for t in times.values())
    assert set(cold) == {"a", "b", "c"}
    assert errors == {"bad": "RuntimeError: no"}


def test_rows_print_ratio_goal_and_verdict(capsys):
    times = {"pytorch": [1.0, 1.0, 1.0], "v9": [1.1, 1.1, 1.1], "v4": [2.0, 2.0, 2.0]}
    evaluator_speed.print_rows([("pytorch", "pytorch", None, None),
                                ("v9 / pytorch", "v9", "pytorch", 1.2),
                                ("v4 / pytorch", "v4", "pytorch", 1.0),
                                ("missing", "gone", "pytorch", 1.0)], times, {"v9": 0.5})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4                               # header + three present runners
    assert lines[2].split()[-3:] == ["1.10", "1.2", "ok"]
    assert lines[3].split()[-3:] == ["2.00", "1.0", "MISSED"]


def test_load_routes_skips_staging_folders_and_other_artifacts(tmp_path):
    model = tmp_path / "m"
    (model / ".v9.staging-123").mkdir(parents=True)
    (model / "et").mkdir()
    (model / "et" / "model.pte").write_bytes(b"")
    (model / "et" / "golden.npz").write_bytes(b"")
    routes, skipped = evaluator_speed.load_routes(str(tmp_path), "m")
    assert routes == {}
    assert [route for route, _ in skipped] == ["et"]
    routes, skipped = evaluator_speed.load_routes(str(tmp_path), "absent")
    assert routes == {} and os.path.join(str(tmp_path), "absent") in skipped[0][1]


def test_encoder_is_bert_base_sized():
    cfg = evaluator_speed.ENCODER
    per_layer = 4 * cfg["d"] * cfg["d"] + 2 * cfg["d"] * cfg["ffn"]
    weights = cfg["layers"] * per_layer + cfg["vocab"] * cfg["d"]
    assert 100e6 < weights < 115e6
    assert evaluator_speed.encoder_inputs()["input_ids"].shape == (1, cfg["tokens"])


def test_decoder_is_a_1b_parameter_stack():
    cfg = evaluator_speed.DECODER
    assert 1.0e9 < evaluator_speed.decoder_parameters(cfg["layers"]) < 1.1e9
    assert evaluator_speed.decoder_inputs()["hidden_states"].shape == (1, cfg["tokens"], cfg["d"])
    args = evaluator_speed.parse_args(["--decoder-only", "--decoder-layers", "2"])
    assert args.decoder_only and args.decoder_layers == 2 and not args.encoder_only
    assert args.decoder_dir.endswith("bench-decoder") and args.encoder_dir.endswith("bench-encoder")
    assert evaluator_speed.count_text(1073809408) == "1.07 B"
    assert evaluator_speed.count_text(108893184) == "109 M"


def test_tiny_decoder_counts_its_parameters_and_is_causal():
    import torch
    cfg = dict(tokens=6, d=16, heads=2, ffn=24, layers=2, seed=0)
    module = evaluator_speed.decoder_module(2, cfg)
    assert sum(p.numel() for p in module.parameters()) == evaluator_speed.decoder_parameters(2, cfg)
    x = torch.from_numpy(evaluator_speed.decoder_inputs(cfg)["hidden_states"])
    changed = x.clone()
    changed[:, -1] += 1.0                                # the last token sees all, none sees it
    with torch.no_grad():
        a, b = module(x), module(changed)
    assert torch.equal(a[:, :-1], b[:, :-1]) and not torch.equal(a[:, -1], b[:, -1])


def test_an_executorch_program_is_timed_on_its_partition_only_when_delegated_whole(tmp_path):
    import json
    folder = tmp_path / "et"
    (folder / "partitions" / "0.mlpackage").mkdir(parents=True)

    def record(**facts):
        (folder / "conversion.json").write_text(json.dumps({"executorch": facts}))
    record(partitions=1, delegated_ops=128, total_ops=128, not_delegated={})
    assert evaluator_speed.find_artifact(str(folder)) == str(folder / "partitions" / "0.mlpackage")
    record(partitions=1, delegated_ops=127, total_ops=128, not_delegated={"aten.stft": 1})
    assert evaluator_speed.find_artifact(str(folder)) is None    # torch runs an op in the et env
    (folder / "partitions" / "1.mlpackage").mkdir()
    record(partitions=2, delegated_ops=128, total_ops=128, not_delegated={})
    assert evaluator_speed.find_artifact(str(folder)) is None


def test_a_core_ai_model_is_named_as_checked_by_apples_interpreter(tmp_path):
    (tmp_path / "m" / "coreai").mkdir(parents=True)
    (tmp_path / "m" / "coreai" / "model.aimodel").write_bytes(b"")
    routes, skipped = evaluator_speed.load_routes(str(tmp_path), "m")
    assert routes == {} and "Core AI interpreter" in dict(skipped)["coreai"]


def test_an_unknown_model_or_no_rounds_is_one_usage_error(capsys):
    import pytest
    for argv in (["--models", "pann_mobilenetv1", "pann_mobilenet"], ["--repeat", "0"]):
        with pytest.raises(SystemExit) as stop:
            evaluator_speed.parse_args(argv)
        assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert "unknown model 'pann_mobilenet' for --models; known: pann_mobilenetv1" in errors[0]
    assert "--repeat must be at least 1" in errors[1]
