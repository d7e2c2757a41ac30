"""The independent mode, engine side (docs/design.md section 17): classes that are a
function of their own images, so forgetting one is training without it, to the byte."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.independent import IndependentViT, derive_class, set_class
from engine.independent_jobs import learn_independent, own_images
from engine.jobs import run_job
from engine.serialize import assemble, class_bytes, split
from engine.training import TrainConfig, train_job
from storage.errors import RefusedError, UnpromptError

ARCH = {"patch_size": 4, "overrides": {"embed_dim": 32, "depth": 1, "num_heads": 2,
                                       "mlp_ratio": 2.0}}


@pytest.fixture(scope="module")
def pool() -> dict:
    """Digits 0-4 as the declared non-erasable pool data."""
    from engine.datasets import load_dataset

    return {**load_dataset("digits", classes=["0-4"]).reference(), "non_erasable": True}


def _train(classes: list[int], pool: dict, seed: int = 0) -> IndependentViT:
    cfg = TrainConfig.for_dataset("digits", mode="independent", classes=classes, seed=seed,
                                  pool_data=pool, **ARCH)
    return run_job(train_job(cfg)).model


@pytest.fixture(scope="module")
def full(pool: dict) -> IndependentViT:
    torch.set_num_threads(1)
    return _train([5, 6, 7, 8, 9], pool)


def test_forgetting_a_class_is_training_without_it_to_the_byte(full, pool) -> None:
    forgotten = copy.deepcopy(full)
    forgotten.remove_classes([7])
    scratch = _train([5, 6, 8, 9], pool)
    assert split(forgotten) == split(scratch)  # shared artifact and every class artifact
    assert full.class_ids == [5, 6, 7, 8, 9] and scratch.class_ids == [5, 6, 8, 9]


def test_learning_a_class_changes_no_other_byte_or_logit(full, pool) -> None:
    from engine.datasets import load_dataset
    from engine.training import predict_logits

    model = _train([5, 6, 8, 9], pool)
    before_bytes, before_logits = split(model), predict_logits(model, _probe())
    images = own_images(load_dataset("digits", classes=[7], class_seeded=True), 7)
    run_job(learn_independent(model, 7, images))
    shared, classes = split(model)
    assert shared == before_bytes[0]
    assert {c: classes[c] for c in before_bytes[1]} == before_bytes[1]
    after = predict_logits(model, _probe())
    keep = [model.class_ids.index(c) for c in (5, 6, 8, 9)]
    assert torch.equal(after[:, keep], before_logits)
    assert classes[7] == class_bytes(full, 7)  # learning 7 later = training with it


def test_a_class_logit_does_not_read_other_classes_parameters(full) -> None:
    model = copy.deepcopy(full)
    x = _probe()
    col = model.class_ids.index(6)
    before = model(x)[:, col].clone()
    with torch.no_grad():
        for param in model.class_parameters(5).values():
            param.add_(torch.randn_like(param))
    assert torch.equal(model(x)[:, col], before)
    model.set_trainable(only_classes=[5])
    model(x)[:, col].sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in model.class_parameters(5).values())


def test_artifacts_round_trip_and_the_pool_is_shared(full) -> None:
    shared, classes = split(full)
    again = assemble(shared, classes)
    assert split(again) == (shared, classes)
    assert torch.equal(again(_probe()), full(_probe()))
    assert full.settings["pool"]["classes"] == [0, 1, 2, 3, 4]
    assert float(full.pool_cov.abs().sum()) > 0


def test_class_seeded_split_does_not_depend_on_the_other_classes() -> None:
    from engine.datasets import load_dataset

    many = load_dataset("digits", classes=["2-9"], class_seeded=True)
    few = load_dataset("digits", classes=[7, 9], class_seeded=True)
    for cid in (7, 9):
        assert torch.equal(own_images(many, cid).float(), own_images(few, cid).float())
    assert many.reference()["class_seeded"] is True
    assert "class_seeded" not in load_dataset("digits", classes=[7]).reference()


def test_bad_inputs_are_refused(full, pool) -> None:
    model = copy.deepcopy(full)
    with pytest.raises(UnpromptError, match="at least 2 images"):
        derive_class(model, torch.zeros(1, 1, 8, 8))
    with pytest.raises(RefusedError, match="already has parameters"):
        model.add_class(6)
    with pytest.raises(RefusedError, match="already has parameters"):
        run_job(learn_independent(model, 6, torch.zeros(3, 1, 8, 8)))
    with pytest.raises(RefusedError, match="non-erasable"):
        _train([5, 6], {**pool, "non_erasable": False})
    set_class(model, 11, derive_class(model, torch.rand(4, 1, 8, 8)))
    assert 11 in model.class_ids and model.class_ids == sorted(model.class_ids)


def _probe() -> torch.Tensor:
    from engine.datasets import load_dataset

    return load_dataset("digits", classes=["5-9"]).test_x[:40].float()



def test_relearn_trains_on_features_computed_once_that_are_the_backbone_s(full) -> None:
    """The audit's relearn attack on an independent model skips the per-step backbone
    pass (docs/design.md section 15): what it trains on gives the model's own logits."""
    from engine.audit.relearn import _inputs, attack_rows
    from engine.datasets import load_dataset

    data = load_dataset("digits", classes=["5-9"])
    model = copy.deepcopy(full)
    model.remove_classes([7])
    rows = attack_rows(data.train_y.numpy(), model.class_ids, 7, 5, 20, seed=0)
    inputs = _inputs(model, data, [7], [rows], "cpu")
    features, labels = inputs.train(rows)
    assert torch.equal(labels, data.train_y[torch.from_numpy(rows)]) and len(rows) == 100
    with torch.no_grad():
        direct = model(data.train_x[torch.from_numpy(rows)].float())
        assert torch.allclose(inputs.forward(model, features), direct, rtol=1e-4, atol=1e-3)
        test = model(data.test_x[data.test_y == 7].float())
        assert torch.allclose(inputs.forward(model, inputs.test(7)), test, rtol=1e-4,
                              atol=1e-3)
