"""scripts/evaluate.py on a tiny set: the table, the JSON summary, the per-image CSV, and user errors."""

import csv
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def evaluate(load_script):
    return load_script("evaluate")


def _table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell: label -> the other cells."""
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_evaluate_reports_gray_checkpoints_and_truth(evaluate, write_photos, tmp_path, checkpoints, capsys):
    photos = write_photos(tmp_path / "photos", 3)
    (tmp_path / "photos" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "eval"
    args = ["--data", str(tmp_path / "photos"), "--size", "32", "--out", str(out), "--workers", "0"]
    args += ["--batch-size", "2", "--checkpoint", str(checkpoints["random"]), "--checkpoint", str(checkpoints["zero"])]
    with pytest.warns(UserWarning, match="broken.png"):
        assert evaluate.main(args) == 0

    rows = _table_rows(capsys.readouterr().out)
    assert list(rows) == ["gray", "tiny/pretrain/best", "tiny/gan/best", "ground truth"]
    psnr, ssim, ciede, cf, delta_cf = (0, 1, 2, 3, 4)
    truth_cf = float(rows["ground truth"][cf])
    assert rows["ground truth"][:cf] == ["–"] * 3 and truth_cf > 20
    assert rows["gray"][cf] == "0.00" and float(rows["gray"][delta_cf]) == pytest.approx(truth_cf, abs=0.01)
    assert float(rows["tiny/gan/best"][cf]) < 1  # a model predicting ab = 0 looks like the gray row
    assert float(rows["tiny/gan/best"][psnr]) == pytest.approx(float(rows["gray"][psnr]), abs=0.1)
    assert float(rows["tiny/pretrain/best"][cf]) > 1
    assert float(rows["tiny/pretrain/best"][ssim]) < float(rows["gray"][ssim]) <= 1
    assert float(rows["gray"][ciede]) > 0
    assert (out / "results.md").read_text().count("| gray |") == 1

    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 3 and summary["size"] == 32
    assert summary["unreadable"] == [str(tmp_path / "photos" / "broken.png")]
    assert summary["checkpoints"] == {
        "tiny/pretrain/best": str(checkpoints["random"]),
        "tiny/gan/best": str(checkpoints["zero"]),
    }
    assert summary["results"]["gray"]["colorfulness"] == 0
    assert summary["results"]["ground truth"]["colorfulness"] == pytest.approx(truth_cf, abs=0.005)
    assert summary["optional_metrics"] == evaluate.metrics.optional_metrics_status()

    with open(out / "per_image.csv", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [(Path(r["file"]).name, r["model"]) for r in records[:4]] == [
        (photos[0].name, "gray"),
        (photos[0].name, "tiny/pretrain/best"),
        (photos[0].name, "tiny/gan/best"),
        (photos[0].name, "ground truth"),
    ]
    assert len(records) == 3 * 4
    gray_psnr = [float(r["psnr"]) for r in records if r["model"] == "gray"]
    assert sum(gray_psnr) / 3 == pytest.approx(summary["results"]["gray"]["psnr"], rel=1e-4)
    assert all(r["psnr"] == "" and float(r["colorfulness"]) > 0 for r in records if r["model"] == "ground truth")


def test_repeated_labels_are_a_user_error(evaluate, write_photos, tmp_path, checkpoints, capsys):
    write_photos(tmp_path / "photos", 1)
    args = ["--data", str(tmp_path / "photos"), "--checkpoint", str(checkpoints["zero"]), "--checkpoint"]
    assert evaluate.main([*args, str(checkpoints["zero"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: need 2 distinct labels") and err.count("\n") == 1


def test_missing_checkpoint_exits_2_with_one_line_when_run_as_a_script(run_script, write_photos, tmp_path):
    write_photos(tmp_path / "photos", 1)
    result = run_script("evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(tmp_path / "photos"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: checkpoint {tmp_path / 'nope.pt'} does not exist")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_saturation_per_checkpoint_scales_its_color_and_a_wrong_count_is_one_line(
    evaluate, write_photos, tmp_path, checkpoints, capsys
):
    write_photos(tmp_path / "photos", 2)
    args = ["--data", str(tmp_path / "photos"), "--size", "32", "--workers", "0", "--out", str(tmp_path / "eval")]
    args += ["--checkpoint", str(checkpoints["random"])] * 3 + ["--labels", "as_trained", "gray_0", "vivid_2"]
    assert evaluate.main([*args, "--saturation", "1", "0", "2"]) == 0
    rows = _table_rows(capsys.readouterr().out)
    cf = 3
    assert float(rows["gray_0"][cf]) < 0.1 * float(rows["as_trained"][cf])  # only the 8-bit rounding's tint
    assert float(rows["vivid_2"][cf]) > 1.5 * float(rows["as_trained"][cf]) > 0
    assert evaluate.main([*args, "--saturation", "1", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --saturation 1.0 2.0: give one factor") and err.count("\n") == 1


def test_a_hints_sweep_scores_each_count_for_models_that_take_hints_beside_zhang_et_al(
    evaluate, write_photos, tmp_path, checkpoints, hinted_checkpoint, capsys
):
    write_photos(tmp_path / "photos", 3)
    args = ["--data", str(tmp_path / "photos"), "--size", "32", "--workers", "0", "--batch-size", "2"]
    args += ["--checkpoint", str(hinted_checkpoint), "--checkpoint", str(checkpoints["random"])]
    sweep_args = [*args, "--out", str(tmp_path / "sweep"), "--hints", "0", "1", "10", "--no-hint-spread"]
    assert evaluate.main(sweep_args) == 0
    printed = capsys.readouterr().out
    rows = _table_rows(printed.split("| hints |")[0])
    hinted, plain = "hinted/best", "tiny/pretrain/best"
    assert list(rows) == [
        "gray",
        f"{hinted}, 0 hints",
        f"{hinted}, 1 hint",
        f"{hinted}, 10 hints",
        f"{plain}, 0 hints",  # without the spread, a model without hints gets the 0 row only
        "ground truth",
    ]
    sweep = _table_rows("| hints |" + printed.split("| hints |")[1])
    assert sweep["0"] == [rows[f"{hinted}, 0 hints"][0], rows[f"{plain}, 0 hints"][0], "24.43"]
    assert sweep["10"] == [rows[f"{hinted}, 10 hints"][0], "–", "28.42"]
    assert evaluate.main([*args, "--out", str(tmp_path / "plain")]) == 0  # without --hints: L alone, as before
    assert _table_rows(capsys.readouterr().out)[hinted][0] == rows[f"{hinted}, 0 hints"][0]
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["hints"] == [0, 1, 10] and f"{hinted}, 1 hint" in summary["results"]
    by_count = [summary["results"][f"{hinted}, {count} hints"]["psnr"] for count in (0, 10)]
    assert by_count[0] != by_count[1]  # the hints reach the model


def test_with_the_spread_every_model_gets_a_row_per_hint_count(
    evaluate, write_photos, tmp_path, checkpoints, hinted_checkpoint, capsys
):
    write_photos(tmp_path / "photos", 2)
    args = ["--data", str(tmp_path / "photos"), "--size", "32", "--workers", "0", "--hints", "0", "10"]
    args += ["--checkpoint", str(hinted_checkpoint), "--checkpoint", str(checkpoints["random"])]
    assert evaluate.main([*args, "--out", str(tmp_path / "spread")]) == 0
    spread = _table_rows(capsys.readouterr().out.split("| hints |")[0])
    assert evaluate.main([*args, "--out", str(tmp_path / "alone"), "--no-hint-spread"]) == 0
    alone = _table_rows(capsys.readouterr().out.split("| hints |")[0])
    plain, hinted = "tiny/pretrain/best", "hinted/best"
    assert f"{plain}, 10 hints" in spread and f"{plain}, 10 hints" not in alone
    assert spread[f"{hinted}, 0 hints"] == alone[f"{hinted}, 0 hints"]  # no hints, nothing to spread
    assert float(spread[f"{hinted}, 10 hints"][0]) > float(alone[f"{hinted}, 10 hints"][0])
