"""Reading action-unit (AU) labelled face data sets from disk: AU tables, images, atomic writes.

Pure Python / NumPy / Pillow (no TensorFlow); the tf.data pipeline builds on top of this module.

Two AU label layouts are read by :func:`load_au_table`:

* one CSV with a file-name column and the OpenFace intensity columns ``AU01_r`` ... ``AU45_r``
  (the layout :func:`write_au_csv` writes and ``data/convert_official.py`` produces), and
* a folder of per-image OpenFace CSVs ``<stem>.csv`` describing the image ``<stem>.<ext>``, as written
  by OpenFace 2 ``FaceLandmarkImg -aus`` (``face, confidence, AU01_r, ...``) or ``FeatureExtraction``
  (``frame, face_id, timestamp, confidence, success, ...``).

Columns are always found by name, never by position. OpenFace separates fields with ``", "``, so names
are stripped of surrounding spaces. Intensities are OpenFace's 0..5 (FACS A..E); the model sees them
divided by 5, in [0, 1] (GANimation, Pumarola et al. ECCV 2018, section 3; ``docs/ganimation.md``).

The official GANimation layout (``aus_openface.pkl`` + ``train_ids.csv`` / ``test_ids.csv`` +
``imgs/``) is converted to the CSV layout by :func:`convert_official`.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import numbers
import os
import pickle
import struct
import tempfile
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganimation_tl.aus import AU_COLUMNS, NUM_AUS, OPENFACE_MAX
from ganimation_tl.errors import InputError

#: Accepted names of the image-name column of a single AU CSV, in order of preference (matched
#: case-insensitively after stripping spaces; the first one present is used).
FILE_COLUMNS: Tuple[str, ...] = ("file", "filename", "file_name", "image", "img")
#: Image file extensions searched when a name has none, in this order (then the same in upper case).
IMAGE_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: OpenFace intensities in (5, 5 + tolerance] are clipped to 5 (its regressors can overshoot slightly,
#: e.g. 5.02); anything larger is an error.
INTENSITY_CLIP_TOLERANCE: float = 0.1
#: Images with more pixels than this are refused before decoding (protects against decompression bombs).
MAX_IMAGE_PIXELS: int = 100_000_000
#: Images whose width or height is below this many pixels cannot hold a usable face.
MIN_IMAGE_SIDE: int = 16

# Deliberate Pillow limit: it warns above MAX_IMAGE_PIXELS and raises DecompressionBombError above
# twice that inside Image.open; read_image refuses anything above MAX_IMAGE_PIXELS itself.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


# ----------------------------------------------------------------------------------------------------
# AU tables
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class AUTable:
    """Images and their action units.

    Attributes:
        files: ``N`` absolute image paths.
        aus: float32 ``[N, 17]`` in [0, 1] = OpenFace intensity / 5, columns in model order
            (:data:`ganimation_tl.aus.AU_COLUMNS`). Read-only.
        source: absolute path of the CSV file or folder the table was read from.
        skipped: one message per skipped row or per-image CSV (OpenFace ``success == 0``, confidence
            below the minimum, no face), in file order.
    """

    files: Tuple[str, ...]
    aus: np.ndarray
    source: str
    skipped: Tuple[str, ...] = ()

    def __post_init__(self):
        aus = np.array(self.aus, dtype=np.float32, copy=True)
        if aus.ndim != 2 or aus.shape[1] != NUM_AUS or aus.shape[0] != len(self.files):
            raise ValueError("AUTable.aus must be [%d, %d], got %s" % (len(self.files), NUM_AUS, aus.shape))
        aus.setflags(write=False)
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "skipped", tuple(self.skipped))
        object.__setattr__(self, "aus", aus)

    def __len__(self) -> int:
        return len(self.files)


@dataclass
class _Row:
    """One parsed CSV data row (internal)."""

    line: int                  # 1-based physical line number in the CSV
    name: Optional[str]        # value of the file column, if any
    aus: np.ndarray            # float64 [17], OpenFace scale 0..5, validated
    confidence: Optional[float]
    success: Optional[float]


def load_au_table(au_csv, image_dir=None, *, min_confidence: float = 0.0, skip_failed: bool = True,
                  check_images: bool = True) -> AUTable:
    """Read image paths and their 17 AU intensities from an AU CSV or a folder of OpenFace CSVs.

    Args:
        au_csv: either (a) one CSV with an image-name column (one of :data:`FILE_COLUMNS`; the name may
            lack its extension, then :data:`IMAGE_EXTENSIONS` are tried in order) and the columns
            ``AU01_r`` ... ``AU45_r``; or (b) a folder of per-image OpenFace CSVs ``<stem>.csv``
            (``FaceLandmarkImg -aus`` or ``FeatureExtraction`` format), each describing the image
            ``<stem>.<ext>`` in ``image_dir``. Other columns may come before or between the AU columns;
            ``, `` separators (OpenFace) and a UTF-8 BOM are accepted. A per-image CSV may hold several
            rows (several faces or frames): the usable row with the highest ``confidence`` is taken
            (the first row if there is no confidence column); a per-image CSV with no usable row (no
            face found: header only; or every row failed) is skipped when ``skip_failed``.
        image_dir: folder of the images. Default: ``<folder containing au_csv>/imgs`` when it exists
            (the official GANimation layout), else the folder containing the CSV (for a folder of
            CSVs: that folder itself).
        min_confidence: rows whose OpenFace ``confidence`` column is below this, in [0, 1], are unusable.
        skip_failed: unusable rows (``success == 0`` or low confidence) are skipped and listed in
            ``AUTable.skipped``; if False they raise InputError.
        check_images: every row's image must exist in ``image_dir`` (only existence is checked here;
            see :func:`validate_images` for decoding). If False, a name without extension whose image
            is not found maps to ``<name>.jpg``.

    Returns:
        An :class:`AUTable`; ``aus`` float32 ``[N, 17]`` in [0, 1] = OpenFace intensity / 5. Intensities
        in (5, 5 + :data:`INTENSITY_CLIP_TOLERANCE`] are clipped to 5.

    Raises:
        InputError: missing CSV / folder / image folder; an empty CSV, one with a header but no rows,
            no or some missing AU columns, no file column, ragged rows, non-UTF-8 text; a folder with
            no CSVs; duplicate file names; a non-numeric, NaN, infinite, negative or > 5 intensity; a
            missing image (when ``check_images``); an unusable row when not ``skip_failed``; no
            usable row at all. Messages name the file, the 1-based line and the column.
    """
    path = os.fspath(au_csv)
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, numbers.Real) \
            or not 0.0 <= min_confidence <= 1.0:
        raise InputError("min_confidence must be a number in [0, 1], got %r" % (min_confidence,))
    if not os.path.exists(path):
        raise InputError("AU label file or folder not found: %s" % path)
    image_dir = _resolve_image_dir(path, image_dir)
    if os.path.isdir(path):
        files, aus, skipped = _load_folder(path, image_dir, min_confidence, skip_failed, check_images)
    else:
        files, aus, skipped = _load_single_csv(path, image_dir, min_confidence, skip_failed, check_images)
    if not files:
        reasons = "; ".join(skipped[:3])
        raise InputError("%s: no usable rows, all %d were skipped (%s%s)"
                         % (path, len(skipped), reasons, "; ..." if len(skipped) > 3 else ""))
    return AUTable(files=tuple(files), aus=np.asarray(aus, np.float64) / OPENFACE_MAX,
                   source=os.path.abspath(path), skipped=tuple(skipped))


def _resolve_image_dir(path: str, image_dir) -> str:
    """Return the absolute image folder for ``path`` (see :func:`load_au_table`)."""
    if image_dir is not None:
        image_dir = os.fspath(image_dir)
        if not os.path.isdir(image_dir):
            raise InputError("image folder not found: %s" % image_dir)
        return os.path.abspath(image_dir)
    parent = os.path.dirname(os.path.abspath(path))
    official = os.path.join(parent, "imgs")
    if os.path.isdir(official):
        return official
    return os.path.abspath(path) if os.path.isdir(path) else parent


def _load_single_csv(path, image_dir, min_confidence, skip_failed, check_images):
    """Read layout (a): one CSV with a file column. Returns (files, raw 0..5 AUs, skipped)."""
    rows = _read_rows(path, need_file_column=True)
    _check_duplicates(path, rows)
    files, aus, skipped = [], [], []
    for row in rows:
        where = "%s line %d (%s)" % (path, row.line, row.name)
        problem = _row_problem(row, min_confidence)
        if problem:
            if not skip_failed:
                raise InputError("%s: %s (pass skip_failed=True to skip such rows)" % (where, problem))
            skipped.append("%s: %s" % (where, problem))
            continue
        files.append(_image_path(image_dir, row.name, check_images, where))
        aus.append(row.aus)
    return files, aus, skipped


def _load_folder(folder, image_dir, min_confidence, skip_failed, check_images):
    """Read layout (b): a folder of per-image OpenFace CSVs. Returns (files, raw 0..5 AUs, skipped)."""
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(".csv") and os.path.isfile(os.path.join(folder, n)))
    if not names:
        raise InputError("folder %s holds no .csv files (expected one OpenFace CSV per image)" % folder)
    files, aus, skipped = [], [], []
    for name in names:
        csv_path = os.path.join(folder, name)
        stem = os.path.splitext(name)[0]
        rows = _read_rows(csv_path, need_file_column=False, allow_no_rows=True)
        usable = [r for r in rows if not _row_problem(r, min_confidence)]
        if not usable:
            problem = ("no face rows (header only)" if not rows else
                       "no usable row: " + "; ".join("line %d: %s" % (r.line, _row_problem(r, min_confidence))
                                                     for r in rows[:3]))
            if not skip_failed:
                raise InputError("%s: %s (pass skip_failed=True to skip such images)" % (csv_path, problem))
            skipped.append("%s: %s" % (csv_path, problem))
            continue
        best = max(usable, key=lambda r: -math.inf if r.confidence is None else r.confidence)
        files.append(_image_path(image_dir, stem, check_images, csv_path))
        aus.append(best.aus)
    return files, aus, skipped


def _read_csv(path: str) -> Tuple[List[str], List[Tuple[int, List[str]]]]:
    """Return the stripped header and the non-blank rows with their 1-based line numbers."""
    if not os.path.isfile(path):
        raise InputError("AU CSV not found (or not a file): %s" % path)
    records = []
    try:
        with open(path, "r", encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, skipinitialspace=True)
            header = next(reader, None)
            for fields in reader:
                if fields and not (len(fields) == 1 and not fields[0].strip()):  # skip blank lines
                    records.append((reader.line_num, fields))
    except UnicodeDecodeError as e:
        raise InputError("%s is not UTF-8 text (bad byte at offset %d)" % (path, e.start)) from None
    except csv.Error as e:
        raise InputError("%s is not a readable CSV file: %s" % (path, e)) from None
    except OSError as e:
        raise InputError("cannot read %s: %s" % (path, e.strerror or e)) from None
    if header is None:
        raise InputError("%s is empty (expected a header line with %s ...)" % (path, ", ".join(AU_COLUMNS[:3])))
    return [h.strip() for h in header], records


def _column_index(header: Sequence[str], path: str) -> dict:
    """Map lower-cased column names to their position; raises on a used name given twice."""
    used = {c.lower() for c in AU_COLUMNS} | set(FILE_COLUMNS) | {"confidence", "success"}
    index = {}
    for i, name in enumerate(header):
        key = name.lower()
        if key in index and key in used:
            raise InputError("%s: column %s appears twice in the header (columns %d and %d)"
                             % (path, name, index[key] + 1, i + 1))
        index.setdefault(key, i)
    return index


def _read_rows(path: str, need_file_column: bool, allow_no_rows: bool = False) -> List[_Row]:
    """Parse and validate every data row of one CSV (file name, 17 raw AUs, confidence, success)."""
    header, records = _read_csv(path)
    index = _column_index(header, path)
    au_cols = [index.get(c.lower()) for c in AU_COLUMNS]
    if all(i is None for i in au_cols):
        raise InputError("%s has no AU intensity columns; expected the OpenFace columns %s"
                         % (path, ", ".join(AU_COLUMNS)))
    missing = [c for c, i in zip(AU_COLUMNS, au_cols) if i is None]
    if missing:
        raise InputError("%s is missing AU column(s) %s (all 17 of %s are needed)"
                         % (path, ", ".join(missing), ", ".join(AU_COLUMNS)))
    file_col = next((index[c] for c in FILE_COLUMNS if c in index), None)
    if need_file_column and file_col is None:
        raise InputError("%s has no image-name column (expected one of: %s); for per-image OpenFace CSVs "
                         "pass their folder instead" % (path, ", ".join(FILE_COLUMNS)))
    if not records and not allow_no_rows:
        raise InputError("%s has a header but no data rows" % path)
    conf_col, success_col = index.get("confidence"), index.get("success")
    rows = []
    for line, fields in records:
        if len(fields) != len(header):
            raise InputError("%s line %d has %d fields but the header has %d"
                             % (path, line, len(fields), len(header)))
        name = None
        if need_file_column:
            name = fields[file_col].strip()
            if not name:
                raise InputError("%s line %d: empty image name in column %s" % (path, line, header[file_col]))
        where = "%s line %d%s" % (path, line, " (%s)" % name if name else "")
        aus = np.array([_intensity(fields[i].strip(), where, c) for c, i in zip(AU_COLUMNS, au_cols)])
        confidence = None if conf_col is None else _number(fields[conf_col].strip(), where, "confidence")
        success = None if success_col is None else _number(fields[success_col].strip(), where, "success")
        rows.append(_Row(line, name, aus, confidence, success))
    return rows


def _number(text: str, where: str, column: str) -> float:
    """Parse a finite float or raise InputError naming the cell."""
    try:
        value = float(text)
    except ValueError:
        raise InputError("%s, column %s: %r is not a number" % (where, column, text)) from None
    if not math.isfinite(value):
        raise InputError("%s, column %s: value %s is not finite" % (where, column, text))
    return value


def _intensity(text: str, where: str, column: str) -> float:
    """Parse one OpenFace intensity (0..5, clipped within the tolerance) or raise InputError."""
    if not text:
        raise InputError("%s, column %s: empty cell; OpenFace intensities are 0..5" % (where, column))
    try:
        value = float(text)
    except ValueError:
        raise InputError("%s, column %s: %r is not a number; OpenFace intensities are 0..5"
                         % (where, column, text)) from None
    return _check_intensity(value, where, column)


def _check_intensity(value: float, where: str, column: str) -> float:
    """Validate a raw OpenFace intensity; return it with (5, 5 + tolerance] clipped to 5."""
    if math.isnan(value):
        raise InputError("%s, column %s: intensity is NaN; OpenFace intensities are 0..5" % (where, column))
    if math.isinf(value):
        raise InputError("%s, column %s: intensity is infinite; OpenFace intensities are 0..5" % (where, column))
    if value < 0:
        raise InputError("%s, column %s: intensity %s is negative; OpenFace intensities are 0..5"
                         % (where, column, _fmt(value)))
    if value > OPENFACE_MAX + INTENSITY_CLIP_TOLERANCE:
        raise InputError("%s, column %s: intensity %s is above 5; OpenFace intensities are 0..5 (were they "
                         "already divided by 5, or are they another tool's scale?)" % (where, column, _fmt(value)))
    return min(value, OPENFACE_MAX)


def _fmt(value: float) -> str:
    return "%g" % value


def _row_problem(row: _Row, min_confidence: float) -> Optional[str]:
    """Why an OpenFace row is unusable (``success == 0`` or low confidence), or None."""
    if row.success is not None and row.success == 0:
        return "OpenFace success is 0 (face tracking failed)"
    if row.confidence is not None and row.confidence < min_confidence:
        return "confidence %g is below min_confidence %g" % (row.confidence, min_confidence)
    return None


def _check_duplicates(path: str, rows: Sequence[_Row]) -> None:
    """Raise InputError if two rows name the same image (extension-less names count as the same)."""
    seen = {}
    for row in rows:
        key = _strip_image_ext(row.name)
        seen.setdefault(key, []).append(row)
    dups = [rs for rs in seen.values() if len(rs) > 1]
    if dups:
        shown = "; ".join("%s (lines %s)" % (rs[0].name, ", ".join(str(r.line) for r in rs)) for rs in dups[:10])
        raise InputError("%s names %d image(s) more than once: %s%s"
                         % (path, len(dups), shown, "; ..." if len(dups) > 10 else ""))


def _strip_image_ext(name: str) -> str:
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in IMAGE_EXTENSIONS else name


def find_image(image_dir: str, name: str) -> Optional[str]:
    """Return the absolute path of image ``name`` in ``image_dir``, or None if it is not there.

    ``name`` may carry an extension (used as is) or not; then :data:`IMAGE_EXTENSIONS` (lower case,
    then upper case) are tried in order and the first existing file wins.
    """
    base = os.path.join(os.path.abspath(image_dir), name)
    if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
        return base if os.path.isfile(base) else None
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        if os.path.isfile(base + ext):
            return base + ext
    return None


def _image_path(image_dir: str, name: str, check_images: bool, where: str) -> str:
    """Resolve a row's image (see :func:`find_image`); raise if missing and ``check_images``."""
    found = find_image(image_dir, name)
    if found is not None:
        return found
    has_ext = os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
    if check_images:
        tried = "" if has_ext else " (tried extensions %s)" % "/".join(IMAGE_EXTENSIONS)
        raise InputError("%s: image %s not found in %s%s" % (where, name, image_dir, tried))
    return os.path.join(image_dir, name if has_ext else name + ".jpg")


# ----------------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------------
def _open_image(path: str) -> Image.Image:
    """Open (header only) and check size limits; raises InputError naming the file."""
    if not os.path.isfile(path):
        raise InputError("image file not found: %s" % path)
    if os.path.getsize(path) == 0:
        raise InputError("image file %s is empty (0 bytes)" % path)
    try:
        img = Image.open(path)
    except Image.DecompressionBombError:
        raise InputError("image %s is too large (over %d megapixels)" % (path, 2 * MAX_IMAGE_PIXELS // 10**6)) from None
    except UnidentifiedImageError:
        raise InputError("%s is not an image file Pillow can read" % path) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise InputError("cannot read image %s: %s" % (path, e)) from None
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        img.close()
        raise InputError("image %s is too large (%dx%d = %.0f megapixels; the limit is %d)"
                         % (path, width, height, width * height / 1e6, MAX_IMAGE_PIXELS // 10**6))
    if min(width, height) < MIN_IMAGE_SIDE:
        img.close()
        raise InputError("image %s is too small (%dx%d) to hold a face; need at least %dx%d pixels"
                         % (path, width, height, MIN_IMAGE_SIDE, MIN_IMAGE_SIDE))
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0          # 16-bit range 0..65535 -> 0..255
        gray = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([gray] * 3, axis=-1))
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def read_image(path, size: Optional[int] = None) -> np.ndarray:
    """Decode an image file into 8-bit RGB.

    EXIF orientation is applied (``ImageOps.exif_transpose``). Grayscale, palette, CMYK, YCbCr and
    16-bit images become 8-bit RGB (16-bit values are scaled by 255/65535); images with transparency
    (RGBA, LA, palette with a transparent colour) are composited on a white background. Animated files
    give their first frame.

    Args:
        path: image file (anything Pillow decodes: JPEG, PNG, BMP, WebP, ...).
        size: if given, resize to ``size x size`` with Lanczos resampling (anti-aliased when shrinking).
            The aspect ratio is not kept: inputs are expected to be square face crops.

    Returns:
        uint8 ``[H, W, 3]`` RGB, values [0, 255] (``H = W = size`` if given).

    Raises:
        InputError: the file is missing, empty, not an image, truncated or corrupt, larger than
            :data:`MAX_IMAGE_PIXELS`, or smaller than :data:`MIN_IMAGE_SIDE` on a side; ``size`` is not a
            positive integer. The message names the file.
    """
    path = os.fspath(path)
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1):
        raise InputError("image size must be a positive integer, got %r" % (size,))
    img = _open_image(path)
    try:
        with img:
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as e:
        raise InputError("image %s is truncated or corrupt: %s" % (path, e)) from None
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((int(size), int(size)), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8).copy()


def validate_images(table: AUTable) -> None:
    """Cheaply check that every image of ``table`` opens (header read + Pillow ``verify``).

    This catches missing, empty, non-image, too small and too large files and many corrupt ones
    (PNG checksums); a JPEG truncated mid-scan is only detected when decoded (:func:`read_image`).

    Raises:
        InputError: listing up to 10 unreadable images with the reason, plus how many there are.
    """
    problems = []
    for path in table.files:
        try:
            img = _open_image(path)
            with img:
                img.verify()
        except InputError as e:
            problems.append(str(e))
        except Exception as e:  # noqa: BLE001 - verify() raises many types for corrupt files
            problems.append("image %s is corrupt: %s" % (path, e))
    if problems:
        raise InputError("%d of %d images in %s cannot be read:\n  %s%s"
                         % (len(problems), len(table.files), table.source, "\n  ".join(problems[:10]),
                            "\n  ..." if len(problems) > 10 else ""))


# ----------------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _atomic_file(path: str, mode: str, **open_kwargs):
    """Yield a temp file in ``path``'s folder; on success it replaces ``path`` (os.replace)."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` via a temp file in the same folder + os.replace."""
    with _atomic_file(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def write_image_atomic(path, rgb_uint8: np.ndarray, format: Optional[str] = None, **save_kwargs) -> None:
    """Save an RGB image atomically (temp file in the same folder, then os.replace).

    Args:
        path: destination; its extension gives the format unless ``format`` is set.
        rgb_uint8: uint8 ``[H, W, 3]`` RGB, values [0, 255].
        format: Pillow format name (``"JPEG"``, ``"PNG"``, ...), or None to infer from the extension.
        **save_kwargs: passed to ``PIL.Image.save``; JPEG defaults to ``quality=95``.

    Raises:
        InputError: the format cannot be inferred from the extension.
        ValueError: ``rgb_uint8`` is not uint8 ``[H, W, 3]``.
    """
    path = os.fspath(path)
    array = np.asarray(rgb_uint8)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError("write_image_atomic expects uint8 [H, W, 3] RGB, got %s %s" % (array.dtype, array.shape))
    if format is None:
        format = Image.registered_extensions().get(os.path.splitext(path)[1].lower())
        if format is None:
            raise InputError("cannot tell the image format of %s from its extension; use .jpg, .png, ..." % path)
    if format.upper() == "JPEG":
        save_kwargs.setdefault("quality", 95)
    with _atomic_file(path, "wb") as f:
        Image.fromarray(array, "RGB").save(f, format=format, **save_kwargs)


def write_au_csv(path, files: Sequence[str], aus01) -> None:
    """Write an AU CSV (``file,AU01_r,...,AU45_r``) atomically; :func:`load_au_table` reads it back.

    Args:
        path: destination CSV.
        files: ``N`` image names (usually relative to the image folder, with extension).
        aus01: ``[N, 17]`` model AUs in [0, 1] (model order); written at OpenFace scale (x 5) with 4 decimals.

    Raises:
        InputError: shape mismatch, values outside [0, 1] or not finite, empty or duplicate file names.
    """
    aus = np.asarray(aus01, dtype=np.float64)
    files = [str(f) for f in files]
    if aus.ndim != 2 or aus.shape != (len(files), NUM_AUS):
        raise InputError("write_au_csv: expected AUs [%d, %d] for %d files, got %s"
                         % (len(files), NUM_AUS, len(files), aus.shape))
    if not np.all(np.isfinite(aus)) or aus.min(initial=0) < 0 or aus.max(initial=0) > 1:
        raise InputError("write_au_csv: AUs must be finite and in [0, 1] (OpenFace intensity / 5)")
    if any(not f.strip() for f in files):
        raise InputError("write_au_csv: empty image name")
    if len({_strip_image_ext(f) for f in files}) != len(files):
        raise InputError("write_au_csv: duplicate image names")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("file",) + AU_COLUMNS)
    for name, row in zip(files, aus):
        writer.writerow([name] + ["%.4f" % (v * OPENFACE_MAX) for v in row])
    write_text_atomic(path, buffer.getvalue())


# ----------------------------------------------------------------------------------------------------
# Official GANimation layout
# ----------------------------------------------------------------------------------------------------
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only builds NumPy arrays and plain values (a downloaded pickle must not run code)."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"),
                ("_codecs", "encode")}  # protocol-2 pickles written by Python 3 wrap bytes in it

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError("refusing to load %s.%s (only NumPy arrays are allowed)" % (module, name))
        module = module.replace("numpy.core.", "numpy._core.")  # NumPy 2 location, no deprecation warning
        return super().find_class(module, name)


def load_official_aus(pkl_path) -> dict:
    """Load the official GANimation ``aus_openface.pkl``.

    A Python-2 pickle of a dict ``id-without-extension -> float64[17]`` with raw OpenFace intensities
    0..5 in model order (official GANimation data layout; ``docs/ganimation.md``). Only NumPy arrays,
    lists and plain values are unpickled; anything else is refused.

    Returns:
        dict ``str id -> float64 [17]`` in 0..5 (values in (5, 5.1] clipped to 5).

    Raises:
        InputError: missing or unreadable file, not a dict, a key that is not a string, a vector that is
            not 17 numbers, a NaN / infinite / negative / > 5 value (naming the id and AU).
    """
    pkl_path = os.fspath(pkl_path)
    if not os.path.isfile(pkl_path):
        raise InputError("AU pickle not found: %s" % pkl_path)
    try:
        with open(pkl_path, "rb") as f:
            data = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - corrupt pickles raise almost anything
        raise InputError("%s is not a readable AU pickle: %s: %s" % (pkl_path, type(e).__name__, e)) from None
    if not isinstance(data, dict):
        raise InputError("%s holds a %s, expected a dict id -> 17 AU intensities" % (pkl_path, type(data).__name__))
    result = {}
    for key, value in data.items():
        if isinstance(key, bytes):
            key = key.decode("latin1")
        if not isinstance(key, str) or not key.strip():
            raise InputError("%s: key %r is not an image id string" % (pkl_path, key))
        try:
            vector = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError("%s, id %s: value is not a vector of numbers" % (pkl_path, key)) from None
        if vector.shape != (NUM_AUS,):
            raise InputError("%s, id %s: expected %d AU intensities, got shape %s"
                             % (pkl_path, key, NUM_AUS, vector.shape))
        where = "%s, id %s" % (pkl_path, key)
        result[key] = np.array([_check_intensity(float(v), where, c) for v, c in zip(vector, AU_COLUMNS)])
    if not result:
        raise InputError("%s holds an empty dict" % pkl_path)
    return result


def read_ids(ids_csv) -> List[Tuple[int, str]]:
    """Read an official ``train_ids.csv`` / ``test_ids.csv``: one ``<id>.jpg`` per line, no header.

    Returns:
        ``(1-based line, name)`` for every non-blank line, names stripped.

    Raises:
        InputError: the file is missing, not UTF-8, or lists no ids.
    """
    ids_csv = os.fspath(ids_csv)
    if not os.path.isfile(ids_csv):
        raise InputError("id list not found: %s" % ids_csv)
    try:
        with open(ids_csv, "r", encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise InputError("%s is not UTF-8 text (bad byte at offset %d)" % (ids_csv, e.start)) from None
    ids = [(i + 1, line.strip()) for i, line in enumerate(lines) if line.strip()]
    if not ids:
        raise InputError("%s lists no image ids" % ids_csv)
    return ids


def convert_official(pkl_path, out_csv, ids_csv=None, image_dir=None) -> int:
    """Convert the official GANimation layout to an AU CSV readable by :func:`load_au_table`.

    Args:
        pkl_path: ``aus_openface.pkl`` (see :func:`load_official_aus`).
        out_csv: destination CSV (``file,AU01_r,...,AU45_r``; file names with the extension found in
            ``image_dir``; values at OpenFace scale 0..5 with 4 decimals), written atomically.
        ids_csv: optional ``train_ids.csv`` / ``test_ids.csv`` (one ``<id>.jpg`` per line): only these
            ids, in this order. Default: every id of the pickle, sorted.
        image_dir: image folder; default ``<folder of pkl_path>/imgs``.

    Returns:
        The number of rows written.

    Raises:
        InputError: a bad pickle (see :func:`load_official_aus`), a listed id absent from the pickle or
            listed twice, ids without an image in ``image_dir`` (up to 10 named), a missing image folder.
    """
    pkl_path = os.fspath(pkl_path)
    aus = load_official_aus(pkl_path)
    image_dir = os.fspath(image_dir) if image_dir is not None else os.path.join(os.path.dirname(
        os.path.abspath(pkl_path)), "imgs")
    if not os.path.isdir(image_dir):
        raise InputError("image folder not found: %s" % image_dir)
    if ids_csv is None:
        wanted = [(None, key) for key in sorted(aus)]
        origin = pkl_path
    else:
        wanted = read_ids(ids_csv)
        origin = os.fspath(ids_csv)
    files, vectors, missing, seen = [], [], [], {}
    for line, name in wanted:
        where = origin if line is None else "%s line %d" % (origin, line)
        key = _strip_image_ext(name)
        if key not in aus:
            raise InputError("%s: id %s is not in %s" % (where, key, pkl_path))
        if key in seen:
            raise InputError("%s: id %s is listed twice (lines %s and %d)" % (origin, key, seen[key], line))
        seen[key] = line
        found = find_image(image_dir, name)
        if found is None:
            missing.append(name)
            continue
        files.append(os.path.relpath(found, os.path.abspath(image_dir)))
        vectors.append(aus[key] / OPENFACE_MAX)
    if missing:
        raise InputError("%d id(s) from %s have no image in %s: %s%s"
                         % (len(missing), origin, image_dir, ", ".join(missing[:10]),
                            ", ..." if len(missing) > 10 else ""))
    write_au_csv(out_csv, files, np.asarray(vectors, dtype=np.float64).reshape(-1, NUM_AUS))
    return len(files)


__all__ = ["AUTable", "FILE_COLUMNS", "IMAGE_EXTENSIONS", "INTENSITY_CLIP_TOLERANCE", "MAX_IMAGE_PIXELS",
           "MIN_IMAGE_SIDE", "convert_official", "find_image", "load_au_table", "load_official_aus",
           "read_ids", "read_image", "validate_images", "write_au_csv", "write_image_atomic",
           "write_text_atomic"]
