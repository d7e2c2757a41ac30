"""The threshold attacks on real (tiny) models: they succeed on an overfit model and stay
at chance when members and non-members come from the same distribution."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audit.outputs import features_and_logits, head_logits
from engine.audit.roc import summarize
from engine.audit.scores import ATTACKS, membership_scores, sample_stats
from engine.jobs import run_job
from tests.audit.conftest import TINY


@pytest.fixture(scope="module")
def overfit():
    """10 digits per class with shuffled labels, 120 epochs: the model can only memorise."""
    import dataclasses

    import torch

    from engine.datasets import load_dataset
    from engine.training import TrainConfig, train_job

    torch.set_num_threads(1)
    data = load_dataset("digits", max_per_class=10)
    gen = torch.Generator().manual_seed(0)
    data = dataclasses.replace(
        data, train_y=data.train_y[torch.randperm(len(data.train_y), generator=gen)],
        test_y=data.test_y[torch.randperm(len(data.test_y), generator=gen)])
    cfg = TrainConfig.from_dict({
        **TINY, "epochs": 120, "patch_size": 2, "lr": 3e-3, "batch_size": 50,
        "weight_decay": 0.0, "max_per_class": 10,
        "overrides": {"embed_dim": 64, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}})
    return run_job(train_job(cfg, dataset=data)).model, data


def _scores(model, x, y) -> dict[str, np.ndarray]:  # noqa: ANN001
    _, logits = features_and_logits(model, x)
    return membership_scores(sample_stats(logits, model.class_ids, y.numpy()))


def test_threshold_attacks_find_the_members_of_an_overfit_model(overfit) -> None:  # noqa: ANN001
    model, data = overfit
    members = _scores(model, data.train_x, data.train_y)
    nonmembers = _scores(model, data.test_x, data.test_y)
    # Labels are random, so only the label-aware attacks can work; entropy is label-free.
    for attack in ("loss", "confidence"):
        assert summarize(members[attack], nonmembers[attack])["auc"] > 0.8, attack


def test_attacks_stay_at_chance_on_two_sets_the_model_never_saw(overfit) -> None:  # noqa: ANN001
    model, data = overfit
    order = np.random.default_rng(0).permutation(len(data.test_y))
    half_a, half_b = order[: len(order) // 2], order[len(order) // 2:]
    a = _scores(model, data.test_x[half_a], data.test_y[half_a])
    b = _scores(model, data.test_x[half_b], data.test_y[half_b])
    for attack in ATTACKS:
        assert abs(summarize(a[attack], b[attack])["auc"] - 0.5) < 0.08, attack


def test_features_and_head_give_the_models_own_logits(overfit) -> None:  # noqa: ANN001
    import torch

    model, data = overfit
    model.eval()
    feats, logits = features_and_logits(model, data.test_x[:32])
    with torch.no_grad():
        expected = model(data.test_x[:32].float()).numpy()
    assert np.allclose(logits, expected, atol=1e-4)
    assert np.allclose(head_logits(model, torch.from_numpy(feats)).numpy(), expected,
                       atol=1e-4)
