"""Dataset loading: splits, class selection, and one clear error per kind of bad input."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import FASHION_MNIST_NAMES, load_dataset, load_reference, match_channels
from storage.errors import NotFoundError, UnpromptError

RNG = np.random.default_rng(0)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx(folder: Path, n_train: int = 30, n_test: int = 10, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = RNG.integers(0, 256, (n, 6, 6))
        labels = np.arange(n) % 10
        for kind, arr, nd in (("images", images, 3), ("labels", labels, 1)):
            data = _idx_bytes(arr)
            name = f"{part}-{kind}-idx{nd}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


def _write_cifar(root: Path, per_batch: int = 6) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {b"data": RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [i % 10 for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def _write_images(root: Path, classes=("cat", "dog"), n: int = 4, size=(5, 5)) -> Path:
    from PIL import Image

    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            pixels = RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


# ---------------------------------------------------------------- digits and the split

def test_digits_is_normalised_with_a_seeded_split(digits):
    import torch

    assert digits.train_x.shape[1:] == (1, 8, 8)
    assert digits.train_x.read().dtype == torch.uint8  # a quarter of float32's bytes
    x = digits.train_x.float()
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert len(digits.train_x) + len(digits.test_x) == 1797
    assert digits.class_names[3] == "3"
    assert digits.reference()["split"]["kind"] == "seeded-stratified"
    other = load_dataset("digits", seed=1)
    assert other.split["digest"] != digits.split["digest"]
    again = load_reference(digits.reference())
    assert again.split["digest"] == digits.split["digest"]


def test_classes_by_index_name_or_range_keep_their_label_ids():
    data = load_dataset("digits", classes=["5-7", 9], img_size=16)
    assert data.class_ids == [5, 6, 7, 9]
    assert set(data.train_y.unique().tolist()) == {5, 6, 7, 9}
    assert data.train_x.shape[-2:] == (16, 16)


def test_unknown_class_and_dataset_are_clear_errors():
    with pytest.raises(NotFoundError, match="Unknown class"):
        load_dataset("digits", classes=["12"])
    with pytest.raises(NotFoundError, match="Unknown dataset"):
        load_dataset("imagenet")


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_uses_the_official_split(tmp_path, gz):
    folder = _write_idx(tmp_path / "fm", gz=gz)
    data = load_dataset("fashion-mnist", data_dir=folder, classes=["Trouser", 3])
    assert data.class_ids == [1, 3]
    assert data.class_names == {1: FASHION_MNIST_NAMES[1], 3: "Dress"}
    assert data.split["kind"] == "official"
    assert (len(data.train_x), len(data.test_x)) == (6, 2)
    assert data.channels == 1


def test_truncated_idx_file_is_named(tmp_path):
    folder = _write_idx(tmp_path / "fm", gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(UnpromptError, match="truncated"):
        load_dataset("mnist", data_dir=folder)


def test_corrupt_idx_header_and_gzip_are_errors(tmp_path):
    folder = _write_idx(tmp_path / "a", gz=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x12\x34\x56\x78garbage")
    with pytest.raises(UnpromptError, match="bad header"):
        load_dataset("mnist", data_dir=folder)
    folder = _write_idx(tmp_path / "b", gz=True)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(UnpromptError, match="gzip"):
        load_dataset("mnist", data_dir=folder)


def test_missing_idx_folder_or_file(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="IDX"):
        load_dataset("mnist", data_dir=tmp_path / "empty")
    with pytest.raises(UnpromptError, match="data folder"):
        load_dataset("cifar10")


# ---------------------------------------------------------------- CIFAR

def test_cifar_batches_load_from_the_parent_folder(tmp_path):
    _write_cifar(tmp_path)
    data = load_dataset("cifar10", data_dir=tmp_path, classes=["c0", "c1"])
    assert data.train_x.shape[1:] == (3, 32, 32)
    assert (len(data.train_x), len(data.test_x)) == (10, 2)
    assert data.class_names == {0: "c0", 1: "c1"}


def test_truncated_cifar_pickle_is_an_error(tmp_path):
    folder = _write_cifar(tmp_path)
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(UnpromptError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=folder)


def test_cifar_pickle_cannot_run_code(tmp_path):
    folder = _write_cifar(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(UnpromptError, match="test_batch"):
        load_dataset("cifar10", data_dir=folder)
    assert not marker.exists()


# ---------------------------------------------------------------- image folders

def test_imagefolder_classes_are_sub_folders(tmp_path):
    root = _write_images(tmp_path / "imgs", n=5)
    data = load_dataset("imagefolder", data_dir=root, classes=["dog"])
    assert data.class_names == {1: "dog"}
    assert (len(data.train_x), len(data.test_x)) == (4, 1)
    assert data.train_x.shape[1:] == (3, 5, 5)


def test_imagefolder_mixed_sizes_empty_class_and_corrupt_image(tmp_path):
    root = _write_images(tmp_path / "mixed")
    _write_images(tmp_path / "mixed", classes=("emu",), size=(7, 7))
    with pytest.raises(UnpromptError, match="mixed sizes"):
        load_dataset("imagefolder", data_dir=root)
    assert load_dataset("imagefolder", data_dir=root, img_size=6).img_size == 6
    root = _write_images(tmp_path / "empty")
    (root / "zebra").mkdir()
    with pytest.raises(UnpromptError, match="zebra has no images"):
        load_dataset("imagefolder", data_dir=root)
    root = _write_images(tmp_path / "corrupt")
    (root / "cat" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(UnpromptError, match="9.png"):
        load_dataset("imagefolder", data_dir=root)


def test_match_channels_between_grey_and_rgb():
    import torch

    grey = torch.zeros(2, 1, 4, 4)
    assert match_channels(grey, 3).shape == (2, 3, 4, 4)
    assert match_channels(torch.zeros(2, 3, 4, 4), 1).shape == (2, 1, 4, 4)


# ---------------------------------------------------------------- real sizes

def test_a_dataset_that_cannot_fit_in_memory_is_refused_before_the_job_starts():
    from engine.jobs import run_job
    from engine.training import TrainConfig, train_job

    with pytest.raises(UnpromptError, match="smaller image size"):
        load_dataset("digits", img_size=64, memory_limit=10**6)
    cfg = TrainConfig.for_dataset("digits", img_size=100_000, device="cpu")  # petabytes
    with pytest.raises(UnpromptError, match="GiB in memory"):
        run_job(train_job(cfg))


def test_large_photos_decode_straight_to_the_chosen_size(tmp_path):
    from PIL import Image

    from engine.dataset_files import read_images

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        pixels = RNG.integers(0, 256, (300, 400, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.jpg")
    assert read_images(folder, 16).shape == (2, 16, 16, 3)
