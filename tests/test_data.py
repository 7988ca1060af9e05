"""pix2color.data: listing, decoding every format and mode, EXIF, bad files, bombs, crops, splits."""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from pix2color.config import DataConfig
from pix2color.data import (
    ImageDataset,
    build_datasets,
    center_box,
    chroma_score,
    collate_images,
    image_size,
    list_images,
    load_crop,
    open_image,
    random_box,
    split_files,
    to_rgb,
)
from pix2color.errors import DataError

SIZE = 32
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def pixel(img: Image.Image, xy: tuple[int, int]) -> np.ndarray:
    return np.asarray(to_rgb(img), dtype=int)[xy[1], xy[0]]


def halves(path: Path, size: tuple[int, int], left, right, **options) -> Path:
    """Write an image whose left half is ``left`` and right half ``right``."""
    img = Image.new("RGB", size, right)
    img.paste(left, (0, 0, size[0] // 2, size[1]))
    img.save(path, **options)
    return path


# --- listing -----------------------------------------------------------------------------------------------------


def test_list_images_walks_folders_recursively_sorted_by_extension(make_image, tmp_path):
    expected = [make_image("a/2.png"), make_image("a/b/1.JPG"), make_image("a/c.webp", format="WEBP")]
    (tmp_path / "a" / "notes.txt").write_text("not listed")
    make_image("a/.hidden/x.jpg")
    assert list_images([tmp_path / "a"]) == sorted(expected)


def test_list_images_survives_a_symlink_loop(make_image, tmp_path):
    image = make_image("root/sub/x.png")
    os.symlink(tmp_path / "root", tmp_path / "root" / "sub" / "loop")
    assert list_images([tmp_path / "root"]) == [image]


def test_list_images_reads_manifests_relative_to_their_folder(make_image, tmp_path):
    a, b = make_image("imgs/a.jpg"), make_image("imgs/b.png")
    (tmp_path / "list.txt").write_text("# comment\nimgs/a.jpg\n\nimgs/b.png\nimgs/a.jpg\n")
    (tmp_path / "list.tsv").write_text(f"file\treason\nimgs/b.png\tkept\n{a}\tkept\n")
    assert list_images([tmp_path / "list.txt"]) == [tmp_path / "imgs/a.jpg", tmp_path / "imgs/b.png"]
    assert list_images([tmp_path / "list.tsv"]) == [tmp_path / "imgs/b.png", a]
    assert list_images([tmp_path / "list.txt", tmp_path / "imgs"]) == [tmp_path / "imgs/a.jpg", b]


@pytest.mark.parametrize("kind", ["missing", "empty folder", "other file"])
def test_list_images_refuses_sources_without_images(kind, tmp_path):
    source = {"missing": tmp_path / "nope", "empty folder": tmp_path, "other file": tmp_path / "data.csv"}[kind]
    if kind == "other file":
        source.write_text("x")
    with pytest.raises(DataError, match=re.escape(str(source))):
        list_images([source])


# --- formats, modes, EXIF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, options", [("x.jpg", {"quality": 95}), ("x.png", {}), ("x.webp", {"quality": 95}),
                                           ("x.bmp", {}), ("x.tif", {}), ("x.gif", {})])  # fmt: skip
def test_open_image_decodes_every_format(name, options, tmp_path):
    path = halves(tmp_path / name, (40, 24), RED, BLUE, **options)
    img = open_image(path)
    assert img.size == (40, 24)
    assert np.abs(pixel(img, (5, 12)) - RED).max() < 40
    assert np.abs(pixel(img, (35, 12)) - BLUE).max() < 40


def test_to_rgb_composites_transparent_modes_on_white(tmp_path):
    rgba = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (10, 0, 20, 10))
    rgba.save(tmp_path / "rgba.png")
    rgba.convert("LA").save(tmp_path / "la.png")
    palette = Image.new("P", (20, 10), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.paste(1, (10, 0, 20, 10))
    palette.save(tmp_path / "p.png", transparency=0)
    for name, right in [("rgba.png", RED), ("la.png", (76, 76, 76)), ("p.png", RED)]:
        img = open_image(tmp_path / name)
        assert img.mode in ("RGBA", "LA", "P"), name
        assert to_rgb(img).mode == "RGB"
        assert pixel(img, (2, 5)).tolist() == list(WHITE), name
        assert np.abs(pixel(img, (15, 5)) - right).max() <= 1, name


def test_to_rgb_scales_16_bit_png_instead_of_clipping(tmp_path):
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "16bit.png")
    img = open_image(tmp_path / "16bit.png")
    assert img.mode == "I;16"
    assert [pixel(img, (x, 0))[0] for x in range(3)] == [0, 128, 255]


@pytest.mark.parametrize("mode, value, expected", [("I", 40000, 156), ("I", 200, 200), ("F", 0.5, 128), ("1", 1, 255)])
def test_to_rgb_converts_integer_float_and_bilevel_modes(mode, value, expected, tmp_path):
    path = tmp_path / "x.tif"
    Image.new(mode, (4, 4), value).save(path)
    assert pixel(open_image(path), (1, 1)).tolist() == [expected] * 3


def test_to_rgb_converts_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    img = open_image(path)
    assert img.mode == "CMYK"
    assert np.abs(pixel(img, (8, 8)) - RED).max() < 10


def test_open_image_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    path = halves(tmp_path / "rotated.jpg", (64, 32), RED, BLUE, exif=exif, quality=95)
    img = open_image(path)
    assert img.size == (32, 64)
    assert image_size(path) == (32, 64)
    assert np.abs(pixel(img, (16, 5)) - RED).max() < 40  # the stored left half is now on top
    crop = ImageDataset([path], SIZE, train=False)[0]
    assert crop[0, 0].float().mean() > 200 and crop[2, -1].float().mean() > 200  # val crop: red top, blue bottom


def broken_exif() -> bytes:
    """EXIF with orientation 6 and a negative SLONG ImageWidth: Pillow reads it, but writing it back (as
    ``ImageOps.exif_transpose`` does) fails."""
    entries = [struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0), struct.pack(">HHIi", 0x0100, 9, 1, -5)]
    return b"Exif\x00\x00MM\x00\x2a" + struct.pack(">IH", 8, len(entries)) + b"".join(entries) + bytes(4)


def test_open_image_survives_a_broken_exif_block(tmp_path):
    path = halves(tmp_path / "broken.jpg", (64, 32), RED, BLUE, exif=broken_exif(), quality=95)
    with pytest.raises(Exception):  # noqa: B017 - the precondition: Pillow's own helper fails on this file
        ImageOps.exif_transpose(Image.open(path))
    assert open_image(path).size == (32, 64)
    assert ImageDataset([path], SIZE, train=True)[0].shape == (3, SIZE, SIZE)


def test_open_image_reads_the_shared_bicycles_photo(shared_data):
    """Reads ../shared/data/bw/DeOldify__bicycles.jpg."""
    path = shared_data / "bw" / "DeOldify__bicycles.jpg"  # said to carry a broken EXIF block
    img = open_image(path)
    assert (img.mode, img.size) == ("L", (1600, 1080))
    batch = ImageDataset([path], SIZE, train=False)[0]
    assert batch.shape == (3, SIZE, SIZE) and batch.dtype == torch.uint8
    assert torch.equal(batch[0], batch[1])  # gray stays gray


# --- bad files and bombs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["empty", "truncated", "text"])
def test_open_image_names_unreadable_files(kind, bad_files):
    with pytest.raises(DataError, match=bad_files[kind].name):
        open_image(bad_files[kind])


def test_dataset_skips_bad_files_with_a_warning_each_and_counts_them(bad_files, make_image):
    files = [make_image("good1.jpg"), *bad_files.values(), make_image("good2.png", size=(20, 12))]
    dataset = ImageDataset(files, SIZE, train=True)
    with pytest.warns(UserWarning) as record:
        batch, skipped = collate_images([dataset[i] for i in range(len(files))])
    messages = [str(w.message) for w in record]
    assert len(messages) == 3
    for path in bad_files.values():
        assert sum(path.name in m for m in messages) == 1
        assert all("\n" not in m for m in messages)
    assert batch.shape == (2, 3, SIZE, SIZE) and batch.dtype == torch.uint8 and skipped == 3


def test_collate_gives_an_empty_batch_when_every_item_is_bad():
    batch, skipped = collate_images([None, None], size=SIZE)
    assert batch.shape == (0, 3, SIZE, SIZE) and batch.dtype == torch.uint8 and skipped == 2


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """A real 12000x10000 1-bit PNG (15 KB; over the 100M-pixel default) and a 1x1 PNG whose header
    claims 20000x20000 (over Pillow's own limit)."""
    folder = tmp_path_factory.mktemp("bombs")
    Image.new("1", (12000, 10000)).save(folder / "big.png")
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", 20000, 20000)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR checksum
    (folder / "huge.png").write_bytes(bytes(data))
    return {"big": folder / "big.png", "huge": folder / "huge.png"}


@pytest.mark.parametrize("name", ["big", "huge"])
def test_open_image_refuses_decompression_bombs(name, bombs):
    with pytest.raises(DataError, match=f"{name}.png.*decompression bomb"):
        open_image(bombs[name])


def test_max_pixels_is_configurable(make_image):
    path = make_image("x.png", size=(100, 100))
    assert open_image(path, max_pixels=10_000).size == (100, 100)
    with pytest.raises(DataError, match="10,000 pixels, over the limit of 9,999"):
        open_image(path, max_pixels=9_999)
    with pytest.warns(UserWarning, match="decompression bomb"):
        assert ImageDataset([path], SIZE, train=True, max_pixels=9_999)[0] is None


def test_build_datasets_stops_before_training_when_too_many_files_are_bad(bad_files, bombs, make_image, tmp_path):
    for seed in range(5):
        make_image(f"bad/good{seed}.jpg", seed=seed)
    os.symlink(bombs["big"], tmp_path / "bad" / "bomb.png")
    cfg = DataConfig(train=[str(tmp_path / "bad")], max_bad_fraction=0.3)
    with pytest.warns(UserWarning), pytest.raises(DataError) as error:
        build_datasets(cfg)
    message = str(error.value)
    assert "3 of 9 images in data.train are unreadable" in message and "data.max_bad_fraction" in message
    assert "bomb.png" in message and "\n" not in message


def test_build_datasets_drops_a_few_bad_files_with_one_warning_each(bad_files, make_image, tmp_path):
    for seed in range(7):
        make_image(f"bad/good{seed}.jpg", seed=seed)
    cfg = DataConfig(train=[str(tmp_path / "bad")], max_bad_fraction=0.4, val_fraction=0.2)
    with pytest.warns(UserWarning) as record:
        train, val = build_datasets(cfg)
    assert [bad_files[k].name in str(w.message) for w in record for k in ("empty", "text")].count(True) == 2
    assert len(record) == 2
    assert len(train) + len(val) == 8  # the truncated JPEG passes the header scan; the loader skips it later
    assert bad_files["empty"] not in train.files + val.files


# --- transforms --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("train", [True, False])
def test_dataset_gives_uint8_rgb_crops_even_from_tiny_images(train, make_image):
    files = [make_image("tiny.png", size=(12, 7)), make_image("wide.jpg", size=(90, 40)), make_image("l.png", mode="L")]
    dataset = ImageDataset(files, SIZE, train=train)
    for i in range(len(files)):
        item = dataset[i]
        assert item.shape == (3, SIZE, SIZE) and item.dtype == torch.uint8 and item.is_contiguous()


def test_resized_dataset_crops_the_same_files_to_its_size_and_leaves_the_original(make_image):
    dataset = ImageDataset([make_image("x.jpg", size=(96, 64))], SIZE, train=True)
    small = dataset.resized(SIZE // 2)
    assert small.files == dataset.files and small.train
    assert small[0].shape == (3, SIZE // 2, SIZE // 2) and dataset[0].shape == (3, SIZE, SIZE)
    assert dataset.resized(SIZE) is dataset


def test_train_crops_are_random_but_reproducible_from_torch_seed(make_image):
    dataset = ImageDataset([make_image("x.jpg", size=(96, 64))], SIZE, train=True)
    torch.manual_seed(0)
    first = [dataset[0] for _ in range(4)]
    torch.manual_seed(0)
    again = [dataset[0] for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(first[0], other) for other in first[1:])


def test_val_crop_is_a_deterministic_center_crop(tmp_path):
    path = halves(tmp_path / "x.png", (96, 32), RED, BLUE)
    dataset = ImageDataset([path], SIZE, train=False)
    item = dataset[0]
    assert torch.equal(item, dataset[0])
    assert item[:, :, : SIZE // 2 - 1].float().mean((1, 2)).tolist() == [255.0, 0.0, 0.0]
    assert item[:, :, SIZE // 2 + 1 :].float().mean((1, 2)).tolist() == [0.0, 0.0, 255.0]


def test_random_box_stays_inside_and_falls_back_for_extreme_shapes():
    torch.manual_seed(0)
    for width, height in [(100, 80), (7, 5), (1000, 3), (1, 1)]:
        left, top, right, bottom = random_box(width, height)
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
    assert center_box(10, 4) == (3.0, 0.0, 7.0, 4.0)


def test_large_jpegs_decode_at_reduced_scale_without_losing_quality(noise, tmp_path):
    path = tmp_path / "large.jpg"
    noise((64, 48)).resize((1024, 768), Image.Resampling.BICUBIC).save(path, quality=95)
    assert open_image(path, min_side=64).size == (128, 96)  # 1/8 DCT scale keeps the shorter side >= 64
    assert open_image(path).size == (1024, 768)
    fast = np.asarray(load_crop(path, SIZE, center_box, 10**8), dtype=float)
    full = np.asarray(to_rgb(open_image(path)).resize((SIZE, SIZE), box=center_box(1024, 768)), dtype=float)
    assert np.abs(fast - full).mean() < 3


# --- splits ------------------------------------------------------------------------------------------------------


def test_build_datasets_splits_train_with_a_seed_and_caps_val(make_image, tmp_path):
    for seed in range(20):
        make_image(f"photos/{seed:02d}.jpg", seed=seed)
    cfg = DataConfig(train=[str(tmp_path / "photos")], val_fraction=0.25, max_val_images=3, size=SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, val = build_datasets(cfg, seed=1)
    assert (len(train), len(val)) == (15, 3) and train.train and not val.train
    assert not set(train.files) & set(val.files)
    assert val.files == sorted(val.files) == build_datasets(cfg, seed=1)[1].files
    assert val.files != build_datasets(cfg, seed=2)[1].files
    assert val[0].shape == (3, SIZE, SIZE)


def test_build_datasets_uses_data_val_when_given(make_image, tmp_path):
    train_files = [make_image(f"t/{i}.jpg", seed=i) for i in range(3)]
    val_file = make_image("v/0.png")
    train, val = build_datasets(DataConfig(train=[str(tmp_path / "t")], val=[str(val_file)], max_val_images=0))
    assert (train.files, val.files) == (train_files, [val_file])


def test_splits_need_two_images_and_keep_one_for_val(make_image, tmp_path):
    with pytest.raises(DataError, match="data.val"):
        build_datasets(DataConfig(train=[str(make_image("only.jpg"))]))
    train, val = split_files([Path(f"{i}.jpg") for i in range(3)], 0.0, seed=0)
    assert (len(train), len(val)) == (2, 1)
    with pytest.raises(DataError, match="data.train is empty"):
        build_datasets(DataConfig())


def test_chroma_score_separates_gray_from_color(noise):
    gray = Image.new("RGB", (64, 64), (120, 120, 120))
    sepia = Image.new("RGB", (64, 64), (112, 66, 20))
    assert chroma_score(gray) == 0
    assert chroma_score(sepia) == 92
    assert chroma_score(noise((300, 200))) > 40  # the thumbnail averages noise down
