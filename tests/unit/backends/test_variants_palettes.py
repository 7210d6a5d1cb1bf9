"""LUT variants palettize as coremltools users do (k-means), and the per-grouped-channel ones
carry the iOS 18 target coremltools requires for them. The configs are coremltools' own."""
from __future__ import annotations

import pytest

from backends import variants

cto = pytest.importorskip("coremltools.optimize.coreml")


@pytest.mark.parametrize("name, nbits, granularity, group", [
    ("lut4", 4, "per_tensor", None), ("lut6", 6, "per_tensor", None),
    ("lut4g16", 4, "per_grouped_channel", 16), ("lut6g16", 6, "per_grouped_channel", 16)])
def test_ml_program_palettes_are_kmeans_configs(monkeypatch, name, nbits, granularity, group):
    seen = {}

    def fake_optimize(mlmodel, make_config, apply):
        seen["config"], seen["apply"] = make_config(cto), apply
        return mlmodel

    monkeypatch.setattr(variants, "_optimize", fake_optimize)
    assert variants.MLPROGRAM[name]("model") == "model"
    config = seen["config"]
    assert seen["apply"] == "palettize_weights"
    assert (config.mode.lower(), config.nbits) == ("kmeans", nbits)
    assert config.granularity.name.lower() == granularity
    assert config.group_size == (group or config.group_size)


def test_grouped_palettes_need_ios18_and_only_ml_program_routes_build_them():
    import backends
    assert variants.min_target("lut4g16", "iOS16") == "iOS18"
    assert variants.min_target("lut4", "iOS16") == "iOS16"
    variants.check(backends.get("v9"), "lut6g16")
    variants.check(backends.get("v9-export"), "lut4g16")
    with pytest.raises(variants.UnknownVariant):
        variants.check(backends.get("v3"), "lut4g16")
