"""What compare prints and compare.md holds: one line per failed route (its failed variants
folded in), numbers as the table formats them, reasons whole in compare.md."""
from compare.rules import recommend
from compare.table import markdown, render, tidy_numbers

from compare_docs import doc, failed_row, ok_row


def variants_doc():
    routes = {"v3": failed_row(), "v9": ok_row()}
    for v in ("fp16w", "lin8", "lut4", "lut6"):
        routes["v3+" + v] = failed_row()
    routes["v9+lin8"] = ok_row(snr=41.25, verified="compressed", size=20000, variant="lin8")
    best, reasons, why_not = recommend(routes)
    for r, why in why_not.items():
        routes[r]["why_not"] = why
    return doc(best, routes, reasons)


def test_a_failed_route_and_its_failed_variants_are_one_row_and_one_line():
    text = render(variants_doc())
    failed = [l for l in text.splitlines() if "failed" in l]
    assert len(failed) == 2, text   # the table's row and the not-recommended line
    assert failed[0].startswith("v3 (and +fp16w, +lin8, +lut4, +lut6)")
    assert failed[1].startswith("  - v3 (and +fp16w, +lin8, +lut4, +lut6): failed at stage convert")
    assert "v3+lin8" not in text and "v9+lin8" in text


def test_the_terminal_cuts_a_long_reason_and_compare_md_keeps_it_whole():
    d = variants_doc()
    line = [l for l in render(d).splitlines() if l.startswith("  - v3")][0]
    assert line.endswith("…") and len(line) < 300
    md = markdown(d)
    assert "…" not in md and "x" * 300 in md


def test_long_floats_are_printed_as_the_table_prints_them():
    assert tidy_numbers("worst SNR 5.769641316527144 dB, err 0.000123456789") == \
        "worst SNR 5.8 dB, err 0.000123"
    assert tidy_numbers("iOS16 (spec 7), 1.5 s, v1.2.3") == "iOS16 (spec 7), 1.5 s, v1.2.3"
    d = doc(None, {"v9": dict(failed_row(), why_not="diverges: worst SNR 5.769641316527144 dB")})
    assert "SNR 5.8 dB" in render(d) and "5.769641316527144" not in markdown(d)


def test_the_fp16_figure_of_an_fp32_program_says_it_is_a_cast():
    from compare.table import cells
    row = {"status": "ok", "verified": {"status": "matches"}, "fp32": {"snr_db": 120.0},
           "fp16": {"snr_db": 40.0, "within_tolerance": True}, "model_type": "mlProgram",
           "spec_version": 7, "target": "iOS16", "size_bytes": 10}
    assert cells("v9+fp32", dict(row, precision="fp32"))[8] == "40.0 dB if cast to fp16"
    assert cells("v9", dict(row, precision="fp16"))[8] == "40.0 dB"
    assert cells("v4", dict(row, model_type="neuralNetwork", precision="fp32"))[8] == "40.0 dB"


def test_seconds_per_stage_from_a_record_and_in_the_table():
    from compare import stage_seconds
    record = {"seconds": {"env": 0.04, "load_toolchain": 6.0, "build": 1.0, "golden": 2.0,
                          "export": 3.0, "convert": 4.0, "save": 0.5, "inspect": 0.1,
                          "process": 20.0, "verify": 1.5}}
    stages = stage_seconds(record, fp16=0.75)
    # The worker's own stages add up to 16.6 s of its 20 s: 3.4 s is its start and our imports.
    assert stages == {"env": 0.0, "toolchain": 6.0, "build": 1.0, "golden": 2.0, "convert": 7.6,
                      "verify": 1.5, "start": 3.4, "fp16": 0.8}
    assert stage_seconds({"status": "failed"}) == {}
    routes = {"v9": ok_row()}
    routes["v9"]["stage_seconds"] = stages
    text = render(doc("v9", routes, ["converts"]))
    header, rule, row = text.split("seconds per stage")[1].splitlines()[1:4]
    assert header.split() == ["seconds", "env", "start", "toolchain", "build", "golden",
                              "convert", "verify", "fp16", "total"]
    assert row.split() == ["v9", "0.0", "3.4", "6.0", "1.0", "2.0", "7.6", "1.5", "0.8", "22.3"]
