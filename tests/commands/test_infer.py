"""infer.py: mirrored output trees, skipping, never overwriting inputs, failures, formats, fast --help."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from pix2color.commands import infer

REPO = Path(__file__).resolve().parents[2]


def run(capsys, *argv) -> tuple[int, str, list[str]]:
    """infer.main on the CPU -> (exit code, stdout, stderr lines without progress-bar redraws)."""
    code = infer.main([*map(str, argv), "--device", "cpu"])
    captured = capsys.readouterr()
    lines = [line for line in re.split(r"[\r\n]+", captured.err) if line.strip() and not re.match(r"\s*\d+%\|", line)]
    return code, captured.out, lines


def sizes(out: Path) -> dict[str, tuple[tuple[int, int], str]]:
    """Relative path -> (size, mode) of every file under ``out``."""
    result = {}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            with Image.open(path) as image:
                result[path.relative_to(out).as_posix()] = (image.size, image.mode)
    return result


def test_mirrors_the_tree_and_reports_unreadable_files(tmp_path, make_image, tiny_checkpoint, capsys):
    make_image("photos/a.jpg", (80, 64))
    make_image("photos/sub/b.png", (64, 48), mode="RGBA")
    make_image("photos/sub/deep/c.tif", (40, 56), mode="L")
    broken = tmp_path / "photos" / "sub" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    code, stdout, errors = run(capsys, tmp_path / "photos", "--checkpoint", tiny_checkpoint, "--out", out)
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith("failed: ") and str(broken) in errors[0], errors
    assert "3 colorized, 0 skipped" in stdout and "1 failed" in stdout
    assert sizes(out) == {
        "a.png": ((80, 64), "RGB"),
        "sub/b.png": ((64, 48), "RGBA"),
        "sub/deep/c.png": ((40, 56), "RGB"),
    }


def test_onnxruntime_backend_writes_what_the_torch_backend_writes(
    tmp_path, make_image, tiny_checkpoint, capsys, monkeypatch
):
    from pix2color.onnx_runtime import OnnxGenerator

    onnx_calls = []
    forward = OnnxGenerator.forward
    monkeypatch.setattr(OnnxGenerator, "forward", lambda self, x: onnx_calls.append(x.shape) or forward(self, x))
    make_image("photos/a.jpg", (80, 64))
    make_image("photos/b.png", (48, 72))
    outputs = {}
    for backend in ("torch", "onnxruntime"):  # both in fp32, as onnxruntime runs: the same arithmetic on any CPU
        out = tmp_path / backend
        argv = ["--out", out, "--backend", backend, "--precision", "fp32"]
        code, stdout, _ = run(capsys, tmp_path / "photos", "--checkpoint", tiny_checkpoint, *argv)
        assert code == 0 and "2 colorized" in stdout
        outputs[backend] = {name: np.asarray(Image.open(out / name), dtype=int) for name in ("a.png", "b.png")}
        assert len(onnx_calls) == (backend == "onnxruntime")  # one batch, and only with that backend
    for name, expected in outputs["torch"].items():
        assert np.abs(outputs["onnxruntime"][name] - expected).max() <= 1, name  # a rounding tie at most


def test_skips_existing_outputs_unless_overwrite(tmp_path, make_image, tiny_checkpoint, capsys):
    make_image("photos/a.jpg")
    make_image("photos/b.png", seed=1)
    out = tmp_path / "photos" / "colorized"  # inside the input folder: what is under --out is never an input
    argv = [tmp_path / "photos", "--checkpoint", tiny_checkpoint, "--out", out]
    assert run(capsys, *argv)[0] == 0
    written = {path: path.stat().st_mtime_ns for path in out.iterdir()}
    code, stdout, _ = run(capsys, *argv)
    assert code == 0 and f"0 colorized, 2 skipped (already in {out}; --overwrite redoes them)" in stdout
    assert {path: path.stat().st_mtime_ns for path in out.iterdir()} == written
    code, stdout, _ = run(capsys, *argv, "--overwrite")
    assert code == 0 and "2 colorized, 0 skipped, 0 failed" in stdout  # no "already in" when none was skipped
    assert sorted(sizes(out)) == ["a.png", "b.png"]
    assert not list(out.glob(".*"))  # no temp files left behind


def test_never_overwrites_an_input(tmp_path, make_image, tiny_checkpoint, capsys):
    photo = make_image("photos/a.png")
    before = photo.read_bytes()
    argv = [tmp_path / "photos", "--checkpoint", tiny_checkpoint, "--out", tmp_path / "photos", "--overwrite"]
    code, _, errors = run(capsys, *argv)
    assert code == 2
    assert len(errors) == 1 and errors[0].startswith("error: ") and "overwrite the input" in errors[0], errors
    assert str(photo) in errors[0]
    assert photo.read_bytes() == before


def test_inputs_that_would_share_an_output_keep_their_extensions_and_all_are_colorized(
    tmp_path, make_image, tiny_checkpoint, capsys
):
    make_image("photos/photo.tif", (48, 40), seed=1)
    make_image("photos/photo.webp", (40, 48), seed=2)
    make_image("photos/other.jpg", (32, 32), seed=3)
    out = tmp_path / "out"
    argv = [tmp_path / "photos", "--checkpoint", tiny_checkpoint, "--out", out, "--compare"]
    code, stdout, errors = run(capsys, *argv)
    assert code == 0 and not errors and "3 colorized, 0 skipped, 0 failed" in stdout
    assert sizes(out) == {
        "other.png": ((32, 32), "RGB"),  # no other input shares its name: it keeps the plain one
        "other_compare.png": ((64, 32), "RGB"),
        "photo.tif.png": ((48, 40), "RGB"),
        "photo.tif_compare.png": ((96, 40), "RGB"),
        "photo.webp.png": ((40, 48), "RGB"),
        "photo.webp_compare.png": ((80, 48), "RGB"),
    }
    assert "0 colorized, 3 skipped" in run(capsys, *argv)[1]  # a second run finds the same names


def test_same_named_photos_of_two_input_folders_are_refused(tmp_path, make_image, tiny_checkpoint, capsys):
    first, second = make_image("a/photo.jpg"), make_image("b/photo.jpg")
    argv = [first.parent, second.parent, "--checkpoint", tiny_checkpoint, "--out", tmp_path / "out"]
    code, _, errors = run(capsys, *argv)
    assert code == 2 and len(errors) == 1
    assert str(first) in errors[0] and str(second) in errors[0] and "separate runs" in errors[0]
    assert not (tmp_path / "out").exists()


def test_compare_and_jpeg(tmp_path, make_image, tiny_checkpoint, capsys):
    make_image("photos/a.png", (80, 64), mode="RGBA", color=(200, 120, 40, 255))  # flat: JPEG keeps it
    out = tmp_path / "out"
    argv = [tmp_path / "photos", "--checkpoint", tiny_checkpoint, "--out", out, "--compare", "--format", "jpg"]
    assert run(capsys, *argv)[0] == 0
    assert sizes(out) == {"a.jpg": ((80, 64), "RGB"), "a_compare.jpg": ((160, 64), "RGB")}
    with Image.open(out / "a_compare.jpg") as compare, Image.open(out / "a.jpg") as colorized:
        halves = np.array(compare, dtype=np.int16).reshape(64, 2, 80, 3)
        assert np.abs(halves[:, 0] - [200, 120, 40]).mean() < 2  # input | output (JPEG blurs the seam)
        assert np.abs(halves[:, 1] - np.array(colorized, dtype=np.int16)).mean() < 2


def test_exif_orientation_broken_exif_and_icc_profile(tmp_path, make_image, tiny_checkpoint, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    make_image("photos/rotated.jpg", (48, 32), exif=exif.tobytes())
    make_image("photos/broken_exif.jpg", (48, 32), exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    make_image("photos/profiled.png", (40, 40), icc_profile=srgb)
    out = tmp_path / "out"
    assert run(capsys, tmp_path / "photos", "--checkpoint", tiny_checkpoint, "--out", out)[0] == 0
    assert sizes(out) == {
        "broken_exif.png": ((48, 32), "RGB"),
        "profiled.png": ((40, 40), "RGB"),
        "rotated.png": ((32, 48), "RGB"),
    }
    with Image.open(out / "profiled.png") as profiled:
        assert profiled.info["icc_profile"] == srgb


def test_files_and_globs(tmp_path, make_image, tiny_checkpoint, capsys):
    make_image("photos/a.png")
    make_image("photos/sub/b.png", seed=1)
    single = make_image("photos/sub/c.jpg", seed=2)
    out = tmp_path / "out"
    pattern = f"{tmp_path}/photos/**/*.png"  # relative to photos/, the glob's fixed part
    assert run(capsys, pattern, single, "--checkpoint", tiny_checkpoint, "--out", out)[0] == 0
    assert sorted(sizes(out)) == ["a.png", "c.png", "sub/b.png"]


def test_a_failed_write_is_counted_and_the_run_goes_on(tmp_path, make_image, tiny_checkpoint, capsys):
    make_image("photos/a.png")
    make_image("photos/sub/b.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the output folder should go")
    code, stdout, errors = run(capsys, tmp_path / "photos", "--checkpoint", tiny_checkpoint, "--out", out)
    assert code == 1 and "1 colorized, 0 skipped" in stdout and "1 failed" in stdout
    assert len(errors) == 1 and "could not write" in errors[0] and str(out / "sub" / "b.png") in errors[0]


def test_a_bad_checkpoint_is_one_line(tmp_path, make_image, tiny_checkpoint, capsys):
    make_image("photos/a.png")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:4096])
    code, _, errors = run(capsys, tmp_path / "photos", "--checkpoint", truncated, "--out", tmp_path / "out")
    assert code == 2
    assert len(errors) == 1 and errors[0].startswith("error: ") and str(truncated) in errors[0], errors
    assert not (tmp_path / "out").exists()


def test_help_answers_without_importing_torch():
    script = (
        "import runpy, sys\n"
        "sys.argv = ['infer.py', '--help']\n"
        "try:\n"
        "    runpy.run_path('infer.py', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({'torch', 'fastai', 'numpy'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert "--checkpoint" in result.stdout
    assert result.stdout.strip().endswith("[]"), result.stdout


HINTED = ["data.size=64", "model.hints=true"]  # a 64 px resnet18 U-Net that takes hints


def test_hints_file_for_one_photo_or_by_file_name_colorizes_with_them(tmp_path, make_image, write_checkpoint, capsys):
    checkpoint = write_checkpoint(tmp_path / "hinted.pt", HINTED)
    first, second = make_image("photos/a.jpg", (80, 64)), make_image("photos/b.png", (64, 48), seed=1)
    one = tmp_path / "one.json"
    one.write_text('[{"x": 10, "y": 20, "color": "#b03a2e", "size": 6}]')
    code, stdout, _ = run(capsys, first, "--checkpoint", checkpoint, "--out", tmp_path / "one", "--hints", one)
    assert code == 0 and "1 colorized" in stdout
    assert run(capsys, first, "--checkpoint", checkpoint, "--out", tmp_path / "none")[0] == 0
    with Image.open(tmp_path / "one" / "a.png") as hinted, Image.open(tmp_path / "none" / "a.png") as plain:
        assert not np.array_equal(np.asarray(hinted), np.asarray(plain))  # the hints reached the model
    by_name = tmp_path / "by_name.json"
    by_name.write_text(f'{{"a.jpg": [{{"x": 79, "y": 63, "lab": [40, 20]}}], "{second}": []}}')
    argv = [tmp_path / "photos", "--checkpoint", checkpoint, "--out", tmp_path / "two", "--hints", by_name]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0 and "2 colorized" in stdout


def test_a_bad_hints_file_is_one_line_exit_2_and_nothing_is_written(
    tmp_path, make_image, tiny_checkpoint, write_checkpoint, capsys
):
    checkpoint = write_checkpoint(tmp_path / "hinted.pt", HINTED)
    make_image("photos/a.jpg", (80, 64))
    make_image("photos/b.jpg", (80, 64))
    cases = {
        "[{": "is not valid JSON (Expecting",
        '[{"x": 80, "y": 1, "color": "#ffffff"}]': "holds one list of hints, which fits a run on one photo, not 2",
        '{"a.jpg": [{"x": 80, "y": 1, "color": "#ffffff"}]}': "hint 1 at x=80, y=1 lies outside the 80x64 photo",
        '{"a.jpg": [{"x": 1, "y": 1, "color": "white"}]}': "color='white' is not an RGB hex colour",
        '{"c.jpg": []}': "'c.jpg' matches no photo of this run",
        '{"a.jpg": [{"x": 1' + "0" * 5000 + "}]}": "is not UTF-8 JSON of a readable size",
        "[" * 100_000 + "]" * 100_000: "is not UTF-8 JSON of a readable size",
    }
    for index, (text, message) in enumerate(cases.items()):  # each stops before the model loads
        hints = tmp_path / f"hints_{index}.json"
        hints.write_text(text)
        out = tmp_path / f"out_{index}"
        code, _, errors = run(capsys, tmp_path / "photos", "--checkpoint", checkpoint, "--out", out, "--hints", hints)
        assert code == 2 and len(errors) == 1 and errors[0].startswith("error: --hints "), errors
        assert message in errors[0], errors
        assert not out.exists()
    hints = tmp_path / "hints_ok.json"
    hints.write_text('{"a.jpg": [{"x": 1, "y": 1, "color": "#ffffff"}]}')
    out = tmp_path / "plain"
    argv = [tmp_path / "photos", "--checkpoint", tiny_checkpoint, "--out", out, "--hints", hints, "--no-hint-spread"]
    code, _, errors = run(capsys, *argv)
    assert code == 2 and "takes no colour hints itself (trained without model.hints)" in errors[0], errors
    assert not out.exists()
    code, stdout, _ = run(capsys, *argv[:-1])  # the spread alone takes them
    assert code == 0 and "2 colorized" in stdout
