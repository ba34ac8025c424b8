"""Tests for ganimation_tl.au_data: AU tables (CSV and per-image OpenFace CSVs), images, atomic writes,
the official-layout converter, and fuzzing of the CSV reader and of parse_au_string."""
import csv
import importlib.util
import io
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ganimation_tl.au_data import (AUTable, convert_official, load_au_table, load_official_aus, read_image,
                                   validate_images, write_au_csv, write_image_atomic, write_text_atomic)
from ganimation_tl.aus import AU_COLUMNS, NUM_AUS, parse_au_string
from ganimation_tl.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
EMOTIONET = SHARED / "data" / "emotionet_sample"
OPENFACE = SHARED / "data" / "openface_sample"
needs_shared = pytest.mark.skipif(not (EMOTIONET / "aus.csv").is_file() or not (OPENFACE / "openface").is_dir(),
                                  reason="shared/ data (emotionet_sample, openface_sample) not found beside the repo")

HEADER = ("file",) + AU_COLUMNS


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
def raw_csv(path, header, rows, sep=","):
    """Write rows of strings joined by sep (no quoting), one per line; returns path."""
    lines = [sep.join(header)] + [sep.join(str(c) for c in row) for row in rows]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def au_row(name, values=None, **overrides):
    """A CSV row: name then 17 intensities (default 1.0), with overrides like AU12_r='-0.5'."""
    values = ["%.2f" % v for v in (values if values is not None else [1.0] * NUM_AUS)]
    for column, text in overrides.items():
        values[AU_COLUMNS.index(column)] = text
    return [name] + values


def make_images(folder, names, size=32):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        Image.new("RGB", (size, size), (120, 80, 60)).save(os.path.join(folder, name))


@pytest.fixture
def dataset(tmp_path):
    """tmp/imgs with a.jpg, b.jpg, c.png; returns tmp_path."""
    make_images(tmp_path / "imgs", ["a.jpg", "b.jpg", "c.png"])
    return tmp_path


def expect_error(match_all, fn, *args, **kwargs):
    """Call fn, assert it raises InputError whose message contains every string in match_all."""
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    for part in match_all:
        assert part in message, "%r not in %r" % (part, message)
    return message


def png_header_only(path, width, height):
    """A PNG whose IHDR claims width x height (no pixel data): Pillow opens its header only."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return str(path)


# ---------------------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------------------
def read_reference_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f, skipinitialspace=True))
    header = [h.strip() for h in rows[0]]
    cols = [header.index(c) for c in AU_COLUMNS]
    return rows[1:], np.array([[float(r[i]) for i in cols] for r in rows[1:]])


@needs_shared
def test_real_single_csv_values_are_csv_over_5():
    table = load_au_table(EMOTIONET / "aus.csv")
    rows, raw = read_reference_csv(EMOTIONET / "aus.csv")
    assert len(table) == 4 and table.aus.shape == (4, 17) and table.aus.dtype == np.float32
    np.testing.assert_allclose(table.aus, raw / 5.0, rtol=0, atol=1e-7)
    assert [os.path.basename(f) for f in table.files] == [r[0] for r in rows]
    assert all(os.path.isabs(f) and os.path.isfile(f) for f in table.files)
    assert all(os.path.dirname(f) == str(EMOTIONET / "imgs") for f in table.files)   # default imgs/
    assert table.skipped == () and table.source == str(EMOTIONET / "aus.csv")
    validate_images(table)


@needs_shared
def test_real_per_image_openface_folder():
    table = load_au_table(OPENFACE / "openface")
    assert len(table) == 4
    csvs = sorted((OPENFACE / "openface").glob("*.csv"))
    for i, csv_path in enumerate(csvs):
        _, raw = read_reference_csv(csv_path)
        np.testing.assert_allclose(table.aus[i], raw[0] / 5.0, rtol=0, atol=1e-7)
        assert table.files[i] == str(OPENFACE / "imgs" / (csv_path.stem + ".jpg"))
    image = read_image(table.files[0])
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert read_image(table.files[0], size=64).shape == (64, 64, 3)


@needs_shared
def test_convert_official_reproduces_reference_csv(tmp_path):
    out = tmp_path / "converted.csv"
    count = convert_official(EMOTIONET / "aus_openface.pkl", out, image_dir=EMOTIONET / "imgs")
    assert count == 4
    converted = load_au_table(out, EMOTIONET / "imgs")
    reference = load_au_table(EMOTIONET / "aus.csv")
    ref_rows, ref_raw = read_reference_csv(EMOTIONET / "aus.csv")
    conv_rows, conv_raw = read_reference_csv(out)
    order = [ [r[0] for r in conv_rows].index(r[0]) for r in ref_rows]
    np.testing.assert_array_equal(np.round(conv_raw[order], 4), np.round(ref_raw, 4))
    np.testing.assert_array_equal(converted.aus[order], reference.aus)
    assert all(len(cell.split(".")[1]) == 4 for r in conv_rows for cell in r[1:])


@needs_shared
def test_convert_official_split_keeps_id_order(tmp_path):
    out = tmp_path / "train.csv"
    assert convert_official(EMOTIONET / "aus_openface.pkl", out, ids_csv=EMOTIONET / "train_ids.csv",
                            image_dir=EMOTIONET / "imgs") == 2
    ids = [line for line in (EMOTIONET / "train_ids.csv").read_text().splitlines() if line.strip()]
    rows, _ = read_reference_csv(out)
    assert [r[0] for r in rows] == ids


@needs_shared
def test_convert_official_script(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("convert_official_script", REPO / "data" / "convert_official.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "test.csv"
    assert script.main([str(EMOTIONET), "--split", "test", "--out", str(out)]) == 0
    assert len(load_au_table(out, EMOTIONET / "imgs")) == 2
    assert script.main([str(tmp_path / "nowhere")]) == 2
    assert "error: AU pickle not found" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------
# CSV formats
# ---------------------------------------------------------------------------------------------------
def test_comma_space_header_and_extensionless_names(dataset):
    values = np.linspace(0, 5, NUM_AUS)
    path = raw_csv(dataset / "aus.csv", ("face_id", "file") + AU_COLUMNS,
                   [["0"] + au_row("a", values), ["0"] + au_row("c", values[::-1])], sep=", ")
    table = load_au_table(path)
    assert table.files == (str(dataset / "imgs" / "a.jpg"), str(dataset / "imgs" / "c.png"))
    np.testing.assert_allclose(table.aus, np.stack([values, values[::-1]]) / 5, atol=1e-3)


def test_columns_found_by_name_not_position(dataset):
    shuffled = list(AU_COLUMNS[::-1])
    header = ["pose_Rx"] + shuffled[:5] + ["gaze_0_x", "filename"] + shuffled[5:]
    value_of = {c: i / 4 for i, c in enumerate(AU_COLUMNS)}
    row = ["0.1"] + ["%g" % value_of[c] for c in shuffled[:5]] + ["0.2", "a.jpg"] + \
          ["%g" % value_of[c] for c in shuffled[5:]]
    table = load_au_table(raw_csv(dataset / "x.csv", header, [row]))
    np.testing.assert_allclose(table.aus[0], np.arange(NUM_AUS) / 4 / 5, atol=1e-7)


def test_explicit_image_dir_and_default_csv_folder(tmp_path):
    make_images(tmp_path, ["a.jpg"])
    table = load_au_table(raw_csv(tmp_path / "aus.csv", HEADER, [au_row("a.jpg")]))   # no imgs/: CSV folder
    assert table.files == (str(tmp_path / "a.jpg"),)
    other = tmp_path / "elsewhere"
    make_images(other, ["a.jpg"])
    assert load_au_table(tmp_path / "aus.csv", other).files == (str(other / "a.jpg"),)


def test_clip_tolerance_above_5(dataset):
    table = load_au_table(raw_csv(dataset / "aus.csv", HEADER, [au_row("a.jpg", AU12_r="5.02")]))
    assert table.aus[0, AU_COLUMNS.index("AU12_r")] == 1.0
    assert table.aus.max() <= 1.0 and table.aus.min() >= 0.0


def test_feature_extraction_single_csv_success_and_confidence(dataset):
    header = ("frame", "face_id", "timestamp", "confidence", "success", "file") + AU_COLUMNS
    rows = [["1", "0", "0.0", "0.98", "1"] + au_row("a.jpg"),
            ["2", "0", "0.1", "0.00", "0"] + au_row("b.jpg"),
            ["3", "0", "0.2", "0.40", "1"] + au_row("c.png")]
    path = raw_csv(dataset / "aus.csv", header, rows, sep=", ")
    table = load_au_table(path)
    assert [os.path.basename(f) for f in table.files] == ["a.jpg", "c.png"]
    assert len(table.skipped) == 1 and "line 3 (b.jpg)" in table.skipped[0] and "success is 0" in table.skipped[0]
    table = load_au_table(path, min_confidence=0.5)
    assert [os.path.basename(f) for f in table.files] == ["a.jpg"]
    assert "line 4 (c.png)" in table.skipped[1] and "confidence 0.4" in table.skipped[1]
    expect_error(["aus.csv line 3 (b.jpg)", "success is 0"], load_au_table, path, skip_failed=False)


def test_per_image_feature_extraction_folder_skips_failed(tmp_path):
    make_images(tmp_path / "imgs", ["x.jpg", "y.png", "z.jpg"])
    folder = tmp_path / "openface"
    folder.mkdir()
    header = ("frame", "face_id", "timestamp", "confidence", "success") + AU_COLUMNS
    raw_csv(folder / "x.csv", header, [["1", "0", "0", "0.9", "1"] + au_row("", [2.0] * NUM_AUS)[1:]], sep=", ")
    raw_csv(folder / "y.csv", header, [["1", "0", "0", "0.0", "0"] + au_row("")[1:]], sep=", ")
    raw_csv(folder / "z.csv", header, [], sep=", ")              # no face found: header only
    table = load_au_table(folder)
    assert table.files == (str(tmp_path / "imgs" / "x.jpg"),)
    np.testing.assert_allclose(table.aus, np.full((1, NUM_AUS), 0.4), atol=1e-7)
    assert len(table.skipped) == 2
    assert "y.csv" in table.skipped[0] and "success is 0" in table.skipped[0]
    assert "z.csv" in table.skipped[1] and "header only" in table.skipped[1]
    expect_error(["y.csv", "success is 0"], load_au_table, folder, skip_failed=False)


def test_per_image_multi_face_takes_most_confident(tmp_path):
    make_images(tmp_path / "imgs", ["m.jpg"])
    folder = tmp_path / "of"
    folder.mkdir()
    header = ("face", "confidence") + AU_COLUMNS + ("AU01_c", "AU28_c")
    rows = [["0", "0.60"] + au_row("", [1.0] * NUM_AUS)[1:] + ["1.0", "0.0"],
            ["1", "0.95"] + au_row("", [3.0] * NUM_AUS)[1:] + ["1.0", "0.0"],
            ["2", "0.80"] + au_row("", [4.0] * NUM_AUS)[1:] + ["0.0", "1.0"]]
    raw_csv(folder / "m.csv", header, rows, sep=", ")
    table = load_au_table(folder)
    np.testing.assert_allclose(table.aus[0], np.full(NUM_AUS, 0.6), atol=1e-7)
    # with min_confidence 0.99 no face is usable: the image is skipped, and nothing is left
    expect_error(["no usable rows", "m.csv", "below min_confidence"], load_au_table, folder, min_confidence=0.99)


def test_write_au_csv_round_trip(dataset):
    rng = np.random.default_rng(0)
    aus = rng.uniform(0, 1, (3, NUM_AUS))
    write_au_csv(dataset / "w.csv", ["a.jpg", "b.jpg", "c.png"], aus)
    table = load_au_table(dataset / "w.csv")
    np.testing.assert_allclose(table.aus, aus, atol=0.5e-4 / 5 + 1e-7)   # 4 decimals at OpenFace scale
    expect_error(["[0, 1]"], write_au_csv, dataset / "bad.csv", ["a.jpg"], np.full((1, NUM_AUS), 1.5))
    expect_error(["duplicate"], write_au_csv, dataset / "bad.csv", ["a.jpg", "a"], np.zeros((2, NUM_AUS)))
    expect_error(["[3, 17]"], write_au_csv, dataset / "bad.csv", ["a", "b", "c"], np.zeros((2, NUM_AUS)))
    assert not (dataset / "bad.csv").exists()


def test_autable_is_read_only(dataset):
    table = load_au_table(raw_csv(dataset / "aus.csv", HEADER, [au_row("a.jpg")]))
    with pytest.raises(ValueError):
        table.aus[0, 0] = 0.5
    with pytest.raises(AttributeError):
        table.files = ()


# ---------------------------------------------------------------------------------------------------
# CSV errors
# ---------------------------------------------------------------------------------------------------
def test_missing_csv_and_folder(tmp_path):
    expect_error(["not found", "nope.csv"], load_au_table, tmp_path / "nope.csv")
    expect_error(["not found", "nodir"], load_au_table, tmp_path / "nodir")


def test_empty_and_header_only(dataset):
    (dataset / "empty.csv").write_text("")
    expect_error(["empty.csv is empty"], load_au_table, dataset / "empty.csv")
    raw_csv(dataset / "head.csv", HEADER, [])
    expect_error(["head.csv has a header but no data rows"], load_au_table, dataset / "head.csv")


def test_no_au_columns_lists_expected(dataset):
    path = raw_csv(dataset / "aus.csv", ("file", "happy", "sad"), [["a.jpg", "1", "0"]])
    expect_error(["aus.csv has no AU intensity columns", "AU01_r", "AU45_r"], load_au_table, path)


def test_some_au_columns_missing_named(dataset):
    header = [h for h in HEADER if h not in ("AU12_r", "AU45_r")]
    path = raw_csv(dataset / "aus.csv", header, [["a.jpg"] + ["1"] * (len(header) - 1)])
    message = expect_error(["aus.csv is missing AU column(s) AU12_r, AU45_r"], load_au_table, path)
    assert "AU01_r," not in message.split("(all")[0]


def test_no_file_column(dataset):
    path = raw_csv(dataset / "aus.csv", AU_COLUMNS, [["1"] * NUM_AUS])
    expect_error(["no image-name column", "file, filename"], load_au_table, path)


def test_duplicate_file_names_named_with_lines(dataset):
    path = raw_csv(dataset / "aus.csv", HEADER, [au_row("a.jpg"), au_row("b.jpg"), au_row("a"), au_row("b.jpg")])
    expect_error(["aus.csv names 2 image(s) more than once", "a.jpg (lines 2, 4)", "b.jpg (lines 3, 5)"],
                 load_au_table, path)


@pytest.mark.parametrize("cell, problem", [
    ("-0.5", "intensity -0.5 is negative; OpenFace intensities are 0..5"),
    ("nan", "intensity is NaN"),
    ("inf", "intensity is infinite"),
    ("-inf", "intensity is infinite"),
    ("5.5", "intensity 5.5 is above 5"),
    ("abc", "'abc' is not a number"),
    ("", "empty cell"),
])
def test_bad_intensity_names_file_line_column(dataset, cell, problem):
    path = raw_csv(dataset / "aus.csv", HEADER, [au_row("a.jpg"), au_row("b.jpg", AU12_r=cell)], sep=", ")
    expect_error(["aus.csv line 3 (b.jpg), column AU12_r: " + problem], load_au_table, path)


def test_bad_intensity_in_per_image_csv(tmp_path):
    folder = tmp_path / "of"
    folder.mkdir()
    make_images(tmp_path / "imgs", ["q.jpg"])
    raw_csv(folder / "q.csv", ("face", "confidence") + AU_COLUMNS, [["0", "0.9"] + au_row("", AU07_r="7")[1:]])
    expect_error(["q.csv line 2, column AU07_r: intensity 7 is above 5"], load_au_table, folder)


def test_bad_confidence_and_ragged_row(dataset):
    header = ("file", "confidence") + AU_COLUMNS
    path = raw_csv(dataset / "aus.csv", header, [["a.jpg", "high"] + au_row("")[1:]])
    expect_error(["aus.csv line 2 (a.jpg), column confidence: 'high' is not a number"], load_au_table, path)
    path = raw_csv(dataset / "aus.csv", HEADER, [au_row("a.jpg"), au_row("b.jpg")[:-2]])
    expect_error(["aus.csv line 3 has 16 fields but the header has 18"], load_au_table, path)


def test_duplicate_header_column(dataset):
    header = HEADER + ("AU12_r",)
    path = raw_csv(dataset / "aus.csv", header, [au_row("a.jpg") + ["1"]])
    expect_error(["column AU12_r appears twice", "columns 10 and 19"], load_au_table, path)


def test_missing_image_and_check_images_off(dataset):
    path = raw_csv(dataset / "aus.csv", HEADER, [au_row("a.jpg"), au_row("ghost")])
    expect_error(["aus.csv line 3 (ghost): image ghost not found in", "imgs"], load_au_table, path)
    table = load_au_table(path, check_images=False)
    assert table.files[1] == str(dataset / "imgs" / "ghost.jpg")


def test_missing_image_folder_and_empty_csv_folder(dataset):
    path = raw_csv(dataset / "aus.csv", HEADER, [au_row("a.jpg")])
    expect_error(["image folder not found", "pics"], load_au_table, path, dataset / "pics")
    (dataset / "empty_dir").mkdir()
    expect_error(["empty_dir holds no .csv files"], load_au_table, dataset / "empty_dir")


def test_all_rows_skipped_is_an_error(dataset):
    header = ("file", "success") + AU_COLUMNS
    path = raw_csv(dataset / "aus.csv", header, [["a.jpg", "0"] + au_row("")[1:]])
    expect_error(["no usable rows", "all 1 were skipped", "success is 0"], load_au_table, path)


def test_non_utf8_and_nul_bytes(dataset):
    (dataset / "latin.csv").write_bytes(",".join(HEADER).encode() + b"\n\xe9t\xe9.jpg" + b",1" * 17 + b"\n")
    expect_error(["latin.csv is not UTF-8 text"], load_au_table, dataset / "latin.csv")
    (dataset / "nul.csv").write_bytes(",".join(HEADER).encode() + b"\na.jpg\x00" + b",1" * 17 + b"\n")
    with pytest.raises(InputError, match="nul.csv"):
        load_au_table(dataset / "nul.csv")


def test_bad_min_confidence(dataset):
    path = raw_csv(dataset / "aus.csv", HEADER, [au_row("a.jpg")])
    expect_error(["min_confidence must be a number in [0, 1]"], load_au_table, path, min_confidence=2)


# ---------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------
def check_rgb(array, shape):
    assert array.dtype == np.uint8 and array.shape == shape


def test_image_modes_become_uint8_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    Image.new("L", (20, 24), 77).save(gray)
    out = read_image(gray)
    check_rgb(out, (24, 20, 3))
    assert (out == 77).all()

    rgba = Image.new("RGBA", (20, 20), (10, 200, 30, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))                      # fully transparent -> white
    rgba.save(tmp_path / "rgba.png")
    out = read_image(tmp_path / "rgba.png")
    check_rgb(out, (20, 20, 3))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[5, 5]) == (10, 200, 30)

    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(tmp_path / "gray16.png")
    out = read_image(tmp_path / "gray16.png")
    check_rgb(out, (20, 20, 3))
    assert (out == round(40000 / 257)).all()

    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    out = read_image(tmp_path / "cmyk.jpg")
    check_rgb(out, (20, 20, 3))
    r, g, b = out[10, 10].astype(int)
    assert r > 200 and g < 60 and b < 60                      # red

    pal = Image.new("RGB", (20, 20), (0, 0, 255))
    pal.paste((255, 255, 0), (0, 0, 10, 20))
    pal.convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "pal.png")
    assert Image.open(tmp_path / "pal.png").mode == "P"
    out = read_image(tmp_path / "pal.png")
    check_rgb(out, (20, 20, 3))
    assert tuple(out[0, 0]) == (255, 255, 0) and tuple(out[0, 19]) == (0, 0, 255)


def test_16_bit_rgb_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    bgr16 = np.zeros((20, 20, 3), np.uint16)
    bgr16[..., 2] = 65535                                     # red in BGR
    cv2.imwrite(str(tmp_path / "rgb16.png"), bgr16)
    out = read_image(tmp_path / "rgb16.png")
    check_rgb(out, (20, 20, 3))
    assert (out[..., 0] == 255).all() and (out[..., 1:] == 0).all()


def test_exif_orientation_applied(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)                   # 40 wide, 20 tall
    array[:, :20] = (255, 0, 0)                               # left half red
    image = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = 6                                          # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "rot.jpg")
    check_rgb(out, (40, 20, 3))
    assert out[:18, :, 0].mean() > 200 and out[22:, :, 0].mean() < 50   # left half is now the top half


def test_resize(tmp_path):
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    Image.fromarray(checker).save(tmp_path / "c.png")
    out = read_image(tmp_path / "c.png", size=16)
    check_rgb(out, (16, 16, 3))
    assert abs(float(out.mean()) - 127.5) < 3 and out.std() < 10     # anti-aliased: a flat grey, no moire
    expect_error(["positive integer"], read_image, tmp_path / "c.png", size=0)


def test_bad_image_files(tmp_path):
    expect_error(["image file not found", "gone.jpg"], read_image, tmp_path / "gone.jpg")
    (tmp_path / "zero.jpg").write_bytes(b"")
    expect_error(["zero.jpg is empty (0 bytes)"], read_image, tmp_path / "zero.jpg")
    (tmp_path / "text.jpg").write_text("this is not a JPEG\n")
    expect_error(["text.jpg is not an image file"], read_image, tmp_path / "text.jpg")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG")
    (tmp_path / "trunc.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    expect_error(["trunc.jpg is truncated or corrupt"], read_image, tmp_path / "trunc.jpg")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    expect_error(["dot.png is too small (1x1) to hold a face"], read_image, tmp_path / "dot.png")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_huge_images_refused_before_decoding(tmp_path):
    expect_error(["big.png is too large (11000x10000 = 110 megapixels; the limit is 100)"],
                 read_image, png_header_only(tmp_path / "big.png", 11000, 10000))
    expect_error(["bomb.png is too large"], read_image, png_header_only(tmp_path / "bomb.png", 30000, 30000))


def test_validate_images_lists_unreadable(tmp_path):
    make_images(tmp_path, ["ok.jpg"])
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    files = tuple(str(tmp_path / n) for n in ("ok.jpg", "zero.jpg", "text.jpg"))
    table = AUTable(files=files, aus=np.zeros((3, NUM_AUS)), source="test")
    expect_error(["2 of 3 images", "zero.jpg", "text.jpg"], validate_images, table)
    validate_images(AUTable(files=files[:1], aus=np.zeros((1, NUM_AUS)), source="test"))

    many = tuple(str(tmp_path / ("missing%02d.jpg" % i)) for i in range(12))
    message = expect_error(["12 of 12 images", "missing00.jpg", "missing09.jpg", "..."], validate_images,
                           AUTable(files=many, aus=np.zeros((12, NUM_AUS)), source="test"))
    assert "missing10.jpg" not in message


# ---------------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------------
def test_write_image_atomic(tmp_path):
    y, x = np.mgrid[0:48, 0:48]
    smooth = np.stack([x * 5, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)      # gradients
    write_image_atomic(tmp_path / "sub" / "x.png", smooth)
    np.testing.assert_array_equal(read_image(tmp_path / "sub" / "x.png"), smooth)
    write_image_atomic(tmp_path / "x.jpg", smooth)
    write_image_atomic(tmp_path / "x50.jpg", smooth, quality=50)
    error95 = np.abs(read_image(tmp_path / "x.jpg").astype(int) - smooth).mean()
    error50 = np.abs(read_image(tmp_path / "x50.jpg").astype(int) - smooth).mean()
    assert error95 < error50 and error95 < 2
    write_image_atomic(tmp_path / "noext", smooth, format="PNG")
    assert Image.open(tmp_path / "noext").format == "PNG"
    expect_error(["cannot tell the image format", "x.xyz"], write_image_atomic, tmp_path / "x.xyz", smooth)
    with pytest.raises(ValueError):
        write_image_atomic(tmp_path / "f.png", smooth.astype(np.float32))
    # a failing save leaves the old file intact and no temp file behind
    write_image_atomic(tmp_path / "keep.png", smooth)
    old = (tmp_path / "keep.png").read_bytes()
    with pytest.raises(KeyError):                           # Pillow: unknown format
        write_image_atomic(tmp_path / "keep.png", smooth, format="NOSUCHFORMAT")
    assert (tmp_path / "keep.png").read_bytes() == old
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_write_text_atomic(tmp_path):
    write_text_atomic(tmp_path / "t.txt", "héllo\nworld\n")
    assert (tmp_path / "t.txt").read_bytes() == "héllo\nworld\n".encode()
    assert (tmp_path / "t.txt").stat().st_mode & 0o777 == 0o644
    write_text_atomic(tmp_path / "t.txt", "second")
    assert (tmp_path / "t.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


# ---------------------------------------------------------------------------------------------------
# official layout errors
# ---------------------------------------------------------------------------------------------------
def official(tmp_path, data, names=("a.jpg", "b.jpg")):
    make_images(tmp_path / "imgs", names)
    with open(tmp_path / "aus_openface.pkl", "wb") as f:
        pickle.dump(data, f, protocol=2)
    return tmp_path / "aus_openface.pkl"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_convert_official_bad_pickles(tmp_path):
    good = {"a": np.full(NUM_AUS, 1.0), "b": np.full(NUM_AUS, 2.0)}
    out = tmp_path / "out.csv"
    pkl = official(tmp_path, [1, 2, 3])
    expect_error(["aus_openface.pkl holds a list, expected a dict"], convert_official, pkl, out)
    pkl = official(tmp_path, {"a": np.zeros(16)})
    expect_error(["id a: expected 17 AU intensities, got shape (16,)"], convert_official, pkl, out)
    pkl = official(tmp_path, {"a": np.full(NUM_AUS, np.nan)})
    expect_error(["id a, column AU01_r: intensity is NaN"], convert_official, pkl, out)
    pkl = official(tmp_path, {"a": _Evil()})
    expect_error(["not a readable AU pickle", "refusing to load"], convert_official, pkl, out)
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x02garbage")
    expect_error(["junk.pkl is not a readable AU pickle"], convert_official, tmp_path / "junk.pkl", out)
    pkl = official(tmp_path, dict(good, c=np.ones(NUM_AUS)))
    expect_error(["1 id(s) from", "have no image", "c"], convert_official, pkl, out)
    assert not out.exists()
    pkl = official(tmp_path, good)
    (tmp_path / "ids.csv").write_text("a.jpg\nz.jpg\n")
    expect_error(["ids.csv line 2: id z is not in"], convert_official, pkl, out, ids_csv=tmp_path / "ids.csv")
    assert convert_official(pkl, out) == 2
    np.testing.assert_allclose(load_official_aus(pkl)["b"], 2.0)
    np.testing.assert_allclose(load_au_table(out).aus, [[0.2] * NUM_AUS, [0.4] * NUM_AUS], atol=1e-7)


# ---------------------------------------------------------------------------------------------------
# fuzzing: only InputError (or success) may come out
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("au_data_fuzz"))


INTERESTING_CELLS = st.sampled_from(["0", "5", "5.02", "5.2", "-0", "-1e-9", "nan", "NaN", "inf", "1e309", "",
                                     " ", "1_0", "0x1", "abc", '"', '"1"', "\x00", "1,2", "\n", "é", "2.5"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_csv_random_bytes(fuzz_dir, data):
    path = os.path.join(fuzz_dir, "bytes.csv")
    with open(path, "wb") as f:
        f.write(data)
    try:
        table = load_au_table(path, check_images=False)
    except InputError:
        return
    assert table.aus.shape == (len(table.files), NUM_AUS)


VALID_CELLS = st.floats(0, 5).map(lambda v: "%.3f" % v)
BAD_CELLS = st.one_of(INTERESTING_CELLS, st.text(max_size=6))
# a valid row (name, success, 17 intensities) with 0..2 cells replaced and sometimes a cell dropped or added
ROWS = st.lists(st.tuples(st.one_of(st.sampled_from(["a.jpg", "b", "a"]), st.text(max_size=8)),
                          st.sampled_from(["1", "0", "x"]),
                          st.lists(VALID_CELLS, min_size=NUM_AUS, max_size=NUM_AUS),
                          st.lists(st.tuples(st.integers(0, NUM_AUS - 1), BAD_CELLS), max_size=2),
                          st.sampled_from([0, 0, 0, -1, 1])), max_size=4)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROWS, st.sampled_from([",", ", "]), st.booleans())
def test_fuzz_csv_random_cells(fuzz_dir, rows, sep, with_success):
    header = (("success",) if with_success else ()) + HEADER
    lines = [sep.join(header)]
    for name, success, cells, replacements, extra in rows:
        for index, cell in replacements:
            cells[index] = cell
        cells = cells[:-1] if extra < 0 else cells + ["1"] * extra
        lines.append(sep.join(([success] if with_success else []) + [name] + cells))
    path = os.path.join(fuzz_dir, "cells.csv")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")
    try:
        table = load_au_table(path, check_images=False, min_confidence=0.5)
    except InputError:
        return
    assert table.aus.dtype == np.float32 and table.aus.shape == (len(table.files), NUM_AUS) and len(table.files)
    assert np.isfinite(table.aus).all() and table.aus.min() >= 0 and table.aus.max() <= 1


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=40),
                 st.lists(st.tuples(st.sampled_from(["AU12", "au01", "12", "AU99", "AU", "", " AU45_r", "x"]),
                                    st.sampled_from(["=", "", "=="]),
                                    st.one_of(INTERESTING_CELLS, st.floats(allow_nan=True).map(repr))),
                          max_size=4).map(lambda items: ",".join(a + b + c for a, b, c in items))))
def test_fuzz_parse_au_string(text):
    try:
        result = parse_au_string(text)
    except InputError:
        return
    assert all(0 <= k < NUM_AUS and 0.0 <= v <= 1.0 for k, v in result.items())
