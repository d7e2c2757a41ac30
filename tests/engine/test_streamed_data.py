"""uint8 storage, the decode-once on-disk cache and the streamed batch source
(docs/design.md section 16): the same batches, and so the same model, either way."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.datasets import load_dataset
from engine.image_cache import cached_images
from engine.images import in_order
from engine.jobs import run_job
from engine.training import TrainConfig, evaluate, learn_class_job, train_job
from storage.errors import UnpromptError
from tests.cli.helpers import assert_clean_error, call_cli
from tests.engine.conftest import TINY


def _photos(root: Path, classes=("ant", "bee", "cat"), n: int = 8) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 120, (10, 10, 3), dtype=np.uint8) + 40 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _load(root: Path, cache: Path | None, **kw):
    stream = {"stream": True, "cache_dir": cache, "workers": 0} if cache else {}
    return load_dataset("imagefolder", data_dir=root, img_size=8, **stream, **kw)


def _train(data):
    cfg = TrainConfig.for_dataset("imagefolder", overrides=TINY, img_size=8, patch_size=2,
                                  epochs=1, batch_size=8, lr=3e-3, device="cpu", augment=1)
    return run_job(train_job(cfg, dataset=data))


def test_streamed_and_in_memory_data_give_the_same_model(tmp_path):
    root = _photos(tmp_path / "photos")
    memory, streamed = _load(root, None), _load(root, tmp_path / "cache")
    assert streamed.train_x.streamed and not memory.train_x.streamed
    assert memory.train_x.read().dtype == torch.uint8
    assert torch.equal(memory.train_x.float(), streamed.train_x.float())
    a, b = _train(memory), _train(streamed)
    assert a.history == b.history and a.per_class_accuracy == b.per_class_accuracy
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    learned = [run_job(learn_class_job(a.model if d is memory else b.model, 9,
                                       d.test_x[d.test_y == 2], retain=(d.train_x, d.train_y),
                                       epochs=1, batch_size=8, device="cpu"))
               for d in (memory, streamed)]
    assert learned[0].train_accuracy == learned[1].train_accuracy
    assert evaluate(learned[0].model, memory.test_x, memory.test_y) == evaluate(
        learned[1].model, streamed.test_x, streamed.test_y)


def test_dataloader_workers_give_the_batches_in_the_same_order(tmp_path):
    root = _photos(tmp_path / "photos")
    data = _load(root, tmp_path / "cache")
    images = data.train_x[torch.arange(len(data.train_x)).flip(0)]  # a lazy subset
    assert len(pickle.dumps(images)) < 2_000  # a worker reopens the file, no copy
    in_memory = _load(root, None).train_x
    assert len(pickle.dumps(in_memory[:2])) < len(pickle.dumps(in_memory)) / 2  # own rows
    order = [np.array([3, 0, 5]), np.array([1, 2]), np.array([4])]
    inline = list(images.batches(order, "cpu"))
    images.workers = 1
    assert all(torch.equal(x, y) for x, y in zip(inline, images.batches(order, "cpu"),
                                                 strict=True))
    assert torch.equal(torch.cat(list(images.split(4))),
                       torch.cat(list(images.batches(in_order(len(images), 4), "cpu"))))


def test_the_cache_is_decoded_once_and_reused(tmp_path):
    root, cache = _photos(tmp_path / "photos"), tmp_path / "cache"
    _load(root, cache)
    files = sorted(cache.iterdir())
    assert [f.suffix for f in files].count(".u8") == 2 and len(files) == 4  # train, test
    stamps = [f.stat().st_mtime_ns for f in files]
    _load(root, cache)
    assert [f.stat().st_mtime_ns for f in sorted(cache.iterdir())] == stamps
    load_dataset("imagefolder", data_dir=root, img_size=6, stream=True, cache_dir=cache,
                 workers=0)
    assert len(list(cache.iterdir())) == 8  # another size is another cache
    (root / "ant" / "0.png").write_bytes((root / "bee" / "0.png").read_bytes())
    again = _load(root, cache)  # changed source files: a new key, never the stale cache
    assert len(list(cache.iterdir())) == 12
    assert torch.equal(again.train_x.float(), _load(root, None).train_x.float())


def test_a_killed_decode_leaves_no_cache_a_later_job_trusts(tmp_path):
    shape = (4, 1, 2, 2)

    def killed(out: np.ndarray) -> None:
        out[:2] = 7
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_images(tmp_path, "k", shape, 255.0, killed)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "k.u8.partial-999999999").write_bytes(b"\7" * 8)  # SIGKILLed mid-decode
    images = cached_images(tmp_path, "k", shape, 255.0, lambda out: out.fill(9))
    assert int(images.read().min()) == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.u8"]
    with (tmp_path / "k.u8").open("r+b") as handle:  # a cache cut short is rebuilt
        handle.truncate(8)
    rebuilt = cached_images(tmp_path, "k", shape, 255.0, lambda out: out.fill(5))
    assert rebuilt.read().tolist() == np.full(shape, 5).tolist()


def test_memory_refusal_counts_uint8_bytes_and_offers_the_streamed_path(tmp_path):
    need = 1797 * 16 * 16  # digits at 16 px, one byte a pixel (4x less than float32)
    assert len(load_dataset("digits", img_size=16, memory_limit=need).train_x) > 0
    with pytest.raises(UnpromptError, match=r"--stream\), or choose a smaller image size"):
        load_dataset("digits", img_size=16, memory_limit=need - 1)
    data = load_dataset("digits", img_size=16, memory_limit=need - 1, stream=True,
                        cache_dir=tmp_path, workers=0)
    assert data.train_x.streamed and data.reference()["stream"] is True
    ws = str(tmp_path / "ws")
    result = call_cli("train", "--name", "big", "--img-size", "100000", "--workspace", ws)
    assert result.returncode == 1
    assert_clean_error(result, "on-disk cache (--stream)")


def test_a_cache_that_would_not_fit_on_disk_is_refused_before_decoding(tmp_path):
    with pytest.raises(UnpromptError, match="GiB is free"):
        load_dataset("digits", img_size=100_000, stream=True, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())
