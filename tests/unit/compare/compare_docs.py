"""Hand-written compare documents and rows for the compare tests."""


def ok_row(snr=70.9, units=("CPU", "GPU", "NE"), verified="matches", size=48000, variant=None):
    return {"status": "ok", "stage": None, "reason": None,
            "verified": {"status": verified, "reason": "within tolerance"},
            "fp32": {"snr_db": snr, "max_abs_error": 0.001}, "fp16": {"within_tolerance": True, "snr_db": snr},
            "size_bytes": size, "toolchain": {"coremltools": "9.0"}, "runtime": "Core ML",
            "spec_version": 7, "model_type": "mlProgram", "layers_ops": 43, "target": "iOS16",
            "compute_units": list(units), "variant": variant, "seconds": 1.5}


def failed_row(stage="convert", reason="ValueError: unsupported op 'histc' " + "x" * 300):
    return {"status": "failed", "stage": stage, "reason": reason, "verified": None,
            "fp32": {}, "fp16": {}, "size_bytes": None, "runtime": "Core ML", "seconds": 2.0}


def doc(recommended, routes=None, reasons=None):
    return {"schema": 1, "model": "net", "source": "net.py:build", "weights": "seeded",
            "min_target": None, "rules": ["rule"], "recommended": recommended,
            "reasons": reasons or (["converts"] if recommended else ["no route converts and matches PyTorch"]),
            "routes": routes or {"v9": ok_row() if recommended else failed_row()},
            "host_torch": "2.13", "seconds": 3.0}
