"""Training jobs: progress, reproducibility, cancel, pretraining, learning a class."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.datasets import ImageDataset, load_dataset
from engine.device import device_description, resolve_device
from engine.jobs import Cancelled, CancelToken, run_job
from engine.training import (
    DEFAULTS,
    TrainConfig,
    evaluate,
    learn_class_job,
    pretrain_job,
    train_job,
)
from storage.errors import RefusedError, UnpromptError
from tests.engine.conftest import TINY


def _config(**changes) -> TrainConfig:
    base = {"overrides": TINY, "patch_size": 2, "epochs": 1, "batch_size": 32, "lr": 3e-3,
            "device": "cpu"}
    return TrainConfig.for_dataset("digits", **{**base, **changes})


@pytest.fixture(scope="module")
def small() -> ImageDataset:
    return load_dataset("digits", classes=[0, 1, 2, 3], max_per_class=40)


def test_train_job_reports_progress_and_is_reproducible(small):
    records = []
    first = run_job(train_job(_config(), dataset=small), records.append)
    second = run_job(train_job(_config(), dataset=small))
    assert {"epoch", "step", "loss", "accuracy", "eta_s"} <= set(records[-1].data)
    assert records[-1].fraction == 1.0
    assert first.model.class_ids == [0, 1, 2, 3]
    assert set(first.per_class_accuracy) == {0, 1, 2, 3}
    assert 0.0 <= first.test_accuracy <= 1.0 and first.seconds > 0
    assert first.device == "CPU" and first.dataset["split"]["kind"] == "seeded-stratified"
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key


def test_cancel_raises_at_the_next_step(small):
    cancel = CancelToken()
    job = train_job(_config(epochs=3), cancel, dataset=small)
    next(job)
    cancel.set()
    with pytest.raises(Cancelled):
        run_job(job)


def test_pretrained_backbone_stays_frozen_in_isolated_mode():
    base = load_dataset("digits", classes=["0-4"], max_per_class=20)
    pre = run_job(pretrain_job(_config(), dataset=base))
    assert pre.arch["overrides"] == TINY and "head.weight" not in pre.state
    erasable = load_dataset("digits", classes=["5-9"], max_per_class=20)
    result = run_job(train_job(_config(mode="isolated"), dataset=erasable,
                               backbone_state=pre.state))
    assert result.model.class_ids == [5, 6, 7, 8, 9]
    for key, value in pre.state.items():
        assert torch.equal(result.model.backbone.state_dict()[key], value), key


def _blobs(classes: list[int], per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise with a bright 2x2 patch whose place is the class: learnt in a few epochs."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(len(classes) * per_class, 1, 8, 8, generator=gen) - 1
    y = torch.tensor(classes).repeat_interleave(per_class)
    for i, label in enumerate(y.tolist()):
        row, col = divmod(label, 4)
        x[i, 0, 2 * row:2 * row + 2, 2 * col:2 * col + 2] = 1
    return x, y


@pytest.fixture(scope="module")
def blob_model():
    """A model that knows classes 0-3 of the blob data perfectly, and that data."""
    torch.set_num_threads(1)
    known = [0, 1, 2, 3]
    (tx, ty), (vx, vy) = _blobs(known, 40, 0), _blobs(known, 100, 1)
    data = ImageDataset("blobs", known, {c: str(c) for c in known}, tx, ty, vx, vy)
    # The paper's objective (wrong pass on every row): on this 160-image toy at batch 16,
    # `full`'s default share 0.4 reaches 0.77 / 1.0 / 0.92 over seeds 0-2 (1.0: 1.0 / 0.99 /
    # 1.0), and this fixture needs a model that knows its classes, not the default's figure.
    cfg = _config(epochs=20, batch_size=16, overrides={**TINY, "weight_init": "jax"},
                  wrong_rows=1.0)
    result = run_job(train_job(cfg, dataset=data))
    assert result.test_accuracy > 0.9
    return result.model, data


def test_learning_a_class_leaves_the_others_alone(blob_model):
    model, data = blob_model
    model = copy.deepcopy(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, acc_before = evaluate(model, data.test_x, data.test_y)
    images, _ = _blobs([6], 40, 2)
    result = run_job(learn_class_job(model, 6, images, retain=(data.train_x, data.train_y),
                                     epochs=5, batch_size=16, device="cpu"))
    after = result.model.state_dict()
    assert set(after) - set(before) == {"prompts.6", "heads.6"}
    assert all(torch.equal(before[k], after[k]) for k in before)
    _, acc_after = evaluate(result.model, data.test_x, data.test_y)
    assert abs(acc_after - acc_before) <= 0.005
    new_x, new_y = _blobs([6], 40, 3)
    assert result.train_accuracy > 0.9 and evaluate(result.model, new_x, new_y)[1] > 0.9


def test_a_cancelled_learn_leaves_the_model_as_it_was(small, make_model):
    model = make_model([0, 1, 2])
    cancel = CancelToken()
    job = learn_class_job(model, 3, small.train_x[small.train_y == 3],
                          retain=(small.train_x, small.train_y), cancel=cancel)
    with pytest.raises(RefusedError):
        run_job(learn_class_job(model, 2, small.train_x[:3], retain=(small.train_x,
                                                                     small.train_y)))
    next(job)
    cancel.set()
    with pytest.raises(Cancelled):
        run_job(job)
    assert model.class_ids == [0, 1, 2]


def test_defaults_and_options():
    assert set(DEFAULTS) >= {"digits", "fashion-mnist"}
    cfg = TrainConfig.for_dataset("digits", epochs=None, seed=3)
    assert cfg.epochs == DEFAULTS["digits"]["epochs"] and cfg.seed == 3
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UnpromptError, match="Unknown training option"):
        TrainConfig.from_dict({"epochz": 3})


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(UnpromptError, match="Unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert device_description() == "CPU"
        with pytest.raises(UnpromptError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_subset_masks_follow_the_two_pass_objective():
    from engine.objective import subset_mask

    gen = torch.Generator().manual_seed(0)
    cols = torch.randint(0, 5, (400,), generator=gen)
    mixed = subset_mask(cols, 5, gen, include_own=True)
    wrong = subset_mask(cols, 5, gen, include_own=False)
    rows = torch.arange(400)
    assert mixed[rows, cols].all() and not wrong[rows, cols].any()
    assert set(wrong.sum(1).tolist()) == {0, 1, 2, 3, 4}  # uniform size in [0, C-1]
    assert set(mixed.sum(1).tolist()) == {1, 2, 3, 4, 5}
