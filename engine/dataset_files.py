"""Readers for the on-disk dataset formats: IDX, CIFAR python batches, image folders.

Each reader returns ``RawData`` (numpy arrays, class names) and turns every malformed
file into one ``UnpromptError`` sentence that names the file.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.errors import NotFoundError, UnpromptError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


@dataclass
class RawData:
    """Decoded images (uint8 ``N,H,W`` or ``N,H,W,C``) and labels, before the split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test: tuple[np.ndarray, np.ndarray] | None  # the official test split, if any
    names: list[str]
    max_value: float
    folder: Path | None = None


def read_digits() -> RawData:
    """scikit-learn's 8x8 digits (always available, no official split)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return RawData(bunch.images.astype(np.float32), bunch.target.astype(np.int64), None,
                   [str(i) for i in range(10)], 16.0)


# ---------------------------------------------------------------- IDX (MNIST-style)

def read_idx_folder(folder: Path, names: list[str] | None) -> RawData:
    """``train-*`` and ``t10k-*`` IDX files, gzipped or raw, with the official split."""
    train_x = read_idx(_idx_file(folder, "train", "images", 3))
    train_y = read_idx(_idx_file(folder, "train", "labels", 1))
    test_x = read_idx(_idx_file(folder, "t10k", "images", 3))
    test_y = read_idx(_idx_file(folder, "t10k", "labels", 1))
    for images, labels, part in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if len(images) != len(labels):
            raise UnpromptError(f"The {part} images and labels in {folder} differ in count "
                                f"({len(images)} vs {len(labels)}).")
    if train_x.ndim != 3 or test_x.shape[1:] != train_x.shape[1:]:
        raise UnpromptError(f"The IDX image files in {folder} do not hold same-size 2-D images.")
    count = int(max(train_y.max(initial=0), test_y.max(initial=0))) + 1
    names = names if names is not None and len(names) >= count else [
        str(i) for i in range(count)]
    return RawData(train_x, train_y.astype(np.int64), (test_x, test_y.astype(np.int64)),
                   list(names), 255.0, folder)


def _idx_file(folder: Path, part: str, kind: str, ndim: int) -> Path:
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            path = folder / f"{part}-{kind}{sep}idx{ndim}-ubyte{suffix}"
            if path.is_file():
                return path
    raise NotFoundError(f"{folder} has no {part}-{kind}-idx{ndim}-ubyte[.gz] file; "
                        "it is not an MNIST-style IDX folder.")


def read_idx(path: Path) -> np.ndarray:
    """Decode one IDX file of unsigned bytes; check its header against its length."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UnpromptError(f"{path} is not a readable gzip file ({exc}).") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] == 0:
        raise UnpromptError(f"{path} is not an IDX file of unsigned bytes (bad header).")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UnpromptError(f"{path} is truncated: its IDX header is incomplete.")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "corrupt (extra bytes)"
        raise UnpromptError(f"{path} is {what}: its header announces {expected} bytes "
                            f"but it has {len(data)}.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


# ---------------------------------------------------------------- CIFAR python batches

def read_cifar(folder: Path, fine: bool) -> RawData:
    """``cifar-10-batches-py`` / ``cifar-100-python`` (or the folder that holds it)."""
    folder = _cifar_root(folder, fine)
    if fine:
        train_parts, test_parts, meta, key = ["train"], ["test"], "meta", "fine_labels"
        names_key = "fine_label_names"
    else:
        train_parts = [f"data_batch_{i}" for i in range(1, 6)]
        test_parts, meta, key, names_key = ["test_batch"], "batches.meta", "labels", "label_names"
    train_x, train_y = _cifar_batches(folder, train_parts, key)
    test_x, test_y = _cifar_batches(folder, test_parts, key)
    names = [str(n) for n in _read_pickle(folder / meta).get(names_key, [])]
    count = int(max(train_y.max(initial=0), test_y.max(initial=0))) + 1
    if len(names) < count:
        raise UnpromptError(f"{folder / meta} names {len(names)} classes but the labels "
                            f"use {count}.")
    return RawData(train_x, train_y, (test_x, test_y), names, 255.0, folder)


def _cifar_root(folder: Path, fine: bool) -> Path:
    sub = "cifar-100-python" if fine else "cifar-10-batches-py"
    marker = "train" if fine else "data_batch_1"
    for candidate in (folder, folder / sub):
        if (candidate / marker).is_file():
            return candidate
    raise NotFoundError(f"{folder} holds no {sub} batches (looked for {marker}).")


def _cifar_batches(folder: Path, parts: list[str], key: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for part in parts:
        path = folder / part
        if not path.is_file():
            raise NotFoundError(f"The CIFAR batch {path} is missing.")
        batch = _read_pickle(path)
        try:
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            label = np.asarray(batch[key], dtype=np.int64)
        except (KeyError, ValueError, TypeError):
            raise UnpromptError(f"{path} is not a CIFAR batch (no 32x32x3 'data' and "
                                f"'{key}').") from None
        if len(data) != len(label):
            raise UnpromptError(f"{path} has {len(data)} images but {len(label)} labels.")
        images.append(data.transpose(0, 2, 3, 1))
        labels.append(label)
    return np.concatenate(images), np.concatenate(labels)


class _SafeUnpickler(pickle.Unpickler):
    """Only numpy arrays and plain containers: a batch file must not run code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a data batch")
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            obj = _SafeUnpickler(handle, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise UnpromptError(f"{path} is not a readable CIFAR pickle ({exc}).") from None
    if not isinstance(obj, dict):
        raise UnpromptError(f"{path} is not a CIFAR batch (expected a dictionary).")
    return {k.decode() if isinstance(k, bytes) else k: _decode(v) for k, v in obj.items()}


def _decode(value):
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


# ---------------------------------------------------------------- image folders

def read_image_folder(folder: Path, img_size: int | None) -> RawData:
    """One sub-folder per class (sorted names are the label indices). The images are
    decoded only when rows of them are read (``ImageFiles``), once, at ``img_size``."""
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise UnpromptError(f"{folder} has no class sub-folders (one folder per class).")
    paths, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        own = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not own:
            raise UnpromptError(f"The class folder {class_dir} has no images.")
        paths += own
        labels += [label] * len(own)
    return RawData(ImageFiles(paths, folder, img_size), np.asarray(labels, dtype=np.int64),
                   None, [p.name for p in class_dirs], 255.0, folder)


_GREY_MODES = ("1", "L", "I", "I;16", "F")


class ImageFiles:
    """Image files read as one uint8 array ``(N, H, W[, 3])`` whose rows decode on demand;
    sizes and colour come from the files' headers, so listing decodes nothing."""

    dtype = np.uint8

    def __init__(self, paths: list[Path], folder: Path, img_size: int | None) -> None:
        self.paths, self.img_size = paths, img_size
        headers = [_header(p) for p in paths]
        sizes = {size for size, _ in headers}
        if len(sizes) > 1 and img_size is None:
            shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
            raise UnpromptError(f"The images in {folder} have mixed sizes ({shown}); "
                                "give an image size to resize them all.")
        self.rgb = any(mode not in _GREY_MODES for _, mode in headers)
        width, height = (img_size, img_size) if img_size else sizes.pop()
        self.shape = (len(paths), height, width, *((3,) if self.rgb else ()))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        for i, row in enumerate(np.asarray(rows)):
            img, _ = _read_image(self.paths[int(row)], self.img_size)
            out[i] = np.asarray(img.convert("RGB") if self.rgb else img, dtype=np.uint8)
        return out


def _header(path: Path) -> tuple[tuple[int, int], str]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size, img.mode
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise UnpromptError(f"{path} is not a readable image ({exc}).") from None


def read_images(folder: Path, img_size: int | None) -> np.ndarray:
    """All images directly in ``folder`` (a new class for ``learn``)."""
    if not folder.is_dir():
        raise NotFoundError(f"The image folder {folder} does not exist.")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UnpromptError(f"The folder {folder} has no images.")
    return _stack_images([_read_image(p, img_size) for p in paths], folder, img_size)


def _read_image(path: Path, img_size: int | None = None):
    """Decode once, already at ``img_size`` (a JPEG decodes at a reduced scale first), so
    a folder of large photos never sits in memory at full resolution."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img_size is not None and img.format == "JPEG":
                img.draft(img.mode, (img_size, img_size))
            img.load()
            grey = img.mode in ("1", "L", "I", "I;16", "F")
            out = img.convert("L" if grey else "RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise UnpromptError(f"{path} is not a readable image ({exc}).") from None
    if img_size is not None and out.size != (img_size, img_size):
        out = out.resize((img_size, img_size), Image.BILINEAR)
    return out, path


def _stack_images(items: list, folder: Path, img_size: int | None) -> np.ndarray:
    sizes = {img.size for img, _ in items}
    if len(sizes) > 1 and img_size is None:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
        raise UnpromptError(f"The images in {folder} have mixed sizes ({shown}); "
                            "give an image size to resize them all.")
    rgb = any(img.mode == "RGB" for img, _ in items)
    arrays = []
    for img, _ in items:
        img = img.convert("RGB") if rgb else img
        arrays.append(np.asarray(img, dtype=np.uint8))
    return np.stack(arrays)
