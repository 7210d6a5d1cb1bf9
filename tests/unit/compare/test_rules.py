"""The recommendation's words follow its row: compute units when fp16 fails everywhere, and
what the compressed variants are for."""
from compare.rules import recommend

from compare_docs import ok_row


def fp16_fails(row):
    row["fp16"] = {"within_tolerance": False, "snr_db": 5.0, "failing": "y", "first_nonfinite": None}
    return row


def test_an_fp32_program_is_not_told_cpu_only_when_its_row_says_cpu_gpu():
    rows = {"v9": fp16_fails(ok_row(size=40000)), "v9+fp32": fp16_fails(ok_row(units=("CPU", "GPU")))}
    rows["v9"]["verified"]["status"] = "diverges"
    best, reasons, _ = recommend(rows)
    assert best == "v9+fp32"
    text = " ".join(reasons)
    assert "CPU only" not in text and ".cpuAndGPU" in text and "runs in fp32 on CPU and GPU" in text


def test_a_neural_network_or_fp16_program_still_ships_for_cpu_only():
    best, reasons, _ = recommend({"v4": fp16_fails(ok_row())})
    assert best == "v4" and any("ship it for CPU only (computeUnits = .cpuOnly)" in r for r in reasons)


def test_compressed_variants_are_said_to_be_for_information_and_one_is_named():
    rows = {"v9": ok_row(),
            "v9+lut4": ok_row(snr=12.0, verified="compressed", size=10000),
            "v9+lut6": ok_row(snr=35.04, verified="compressed", size=15000),
            "v9+lin8": ok_row(snr=48.0, verified="compressed", size=20000)}
    best, reasons, _ = recommend(rows)
    assert best == "v9"
    assert reasons[-1] == (
        "compressed variants (v9+lut4, v9+lut6, v9+lin8) are shown for information only: no "
        "tolerance applies to compressed weights, so none is recommended; if the file must be "
        "smaller, try v9+lut6 first: the smallest that keeps a worst SNR of 20 dB or more "
        "(15.0 kB, 35.0 dB), then check it on your own data")
    _, reasons, _ = recommend({"v9": ok_row(), "v9+lut4": ok_row(snr=12.0, verified="compressed")})
    assert reasons[-1].endswith("none keeps a worst SNR of 20 dB against PyTorch")
