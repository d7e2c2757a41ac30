"""Offline LiRA with K shadow models (Carlini et al. 2022, offline variant). (torch)

Targets: up to ``per_class`` train samples per class (IN for the original model) and as
many test samples (OUT). Each shadow model is trained with the model's own configuration
on a seeded random half of the remaining train samples, so no shadow ever sees a target:
all shadows are OUT models. Per target, a Gaussian fitted to the shadows' logit-scaled
true-label confidences gives the score ``Phi((phi_target - mu_out) / sigma_out)``.
Shadows know every class, so a forgotten class's targets (confidence 0 in a model
without its prompt) score as far OUT as possible, members and non-members alike.

RMIA runs on the same targets with the shadows as its reference models; its ``a`` is
chosen on pairs of shadows (docs/design.md section 15): shadow i attacked with shadow j,
on calibration samples of the pool that i trained on and j did not (members) against the
non-member targets (OUT for both). The audit uses that ``a`` for its own RMIA as well.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import numpy as np

from engine.audit import rmia, roc
from engine.audit.attacks import lira_offline
from engine.audit.intervals import MIN_SIDE
from engine.audit.outputs import features_and_logits, sample_indices
from engine.audit.rmia_audit import A_DEFAULT, summary
from engine.audit.scores import logit_confidence
from engine.audit.stages import scaled
from engine.jobs import CancelToken, Progress
from engine.ray_fanout import fan_out, fans_out

PER_CLASS = 100
CALIBRATION_PER_CLASS = 50  # pool samples per class on which shadow pairs choose RMIA's a
A_BASIS = "chosen on pairs of LiRA shadow models (one IN, the other OUT for its members)"


def lira_job(targets: Mapping[str, Any], dataset: Any, config: dict[str, Any],
             backbone_state: Any, *, k: int, forgotten: list[int], seed: int = 0,
             per_class: int = PER_CLASS, cancel: CancelToken | None = None
             ) -> Generator[Progress, None, dict[str, tuple[dict, dict]]]:
    """``{name: (metrics, roc chart points, scores)}`` for each model in ``targets``;
    ``scores`` maps "lira" and "rmia" to (member scores, non-member scores).

    ``metrics["rmia"]`` is RMIA on the same targets with the same shadow models as its
    reference models (section 15): the two attacks compared like for like, with ``a``
    chosen on pairs of shadows (``a``, ``a_chosen``, ``a_basis``, ``a_grid_auc``)."""
    train_y, test_y = dataset.train_y.numpy(), dataset.test_y.numpy()
    members = sample_indices(train_y, per_class, seed + 7)
    nonmembers = sample_indices(test_y, per_class, seed + 8)
    pool = np.setdiff1d(np.arange(len(train_y)), members)
    calibration = pool[sample_indices(train_y[pool], CALIBRATION_PER_CLASS, seed + 9)]
    x = _cat(_cat(dataset.train_x[members], dataset.test_x[nonmembers]),
             dataset.train_x[calibration])
    y = np.concatenate([train_y[members], test_y[nonmembers], train_y[calibration]])
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]
    n = len(is_member)
    shared = {"dataset": dataset, "pool": pool, "config": config,
              "backbone_state": backbone_state, "x": x, "y": y}
    device = _device(config)
    if fans_out(device):  # the shadows are independent: Ray tasks (docs/design.md section 12)
        outputs = yield from fan_out(shadow_confidence, shared,
                                     [{"seed": seed, "index": i} for i in range(k)],
                                     "shadow models", cancel, device)
    else:
        outputs = []
        for i in range(k):
            outputs.append((yield from scaled(_shadow_phi(**shared, seed=seed, index=i,
                                                          cancel=cancel),
                                              i / k, (i + 1) / k, f"shadow {i + 1}/{k}")))
    shadows = np.stack([conf[:n] for conf, _ in outputs])
    probs = np.stack([prob for _, prob in outputs])
    trained = [np.isin(calibration, shadow_half(pool, seed, i)) for i in range(k)]
    chosen = _chosen_a(_pairs(probs[:, n:], trained, probs[:, :n][:, ~is_member]), seed)
    a = chosen["a"]
    forget, y = np.isin(y[:n], forgotten), y[:n]
    out = {}
    for name, model in targets.items():
        logits = features_and_logits(model, x[:n])[1]
        metrics, points, score = _score(logits, model.class_ids, y, shadows, is_member,
                                        forget, k)
        metrics["rmia"], rmia_scores = _rmia(rmia.probabilities(logits, model.class_ids, y),
                                             probs[:, :n], is_member, a, seed)
        metrics["rmia"].update(chosen)
        out[name] = metrics, points, {"lira": (score[is_member], score[~is_member]),
                                      "rmia": rmia_scores}
    return out


def _chosen_a(pairs: list[rmia.Pair], seed: int) -> dict[str, Any]:
    """``a`` chosen on the shadow pairs with enough samples on each side, else the default."""
    usable = [p for p in pairs if min(len(p[0]), len(p[2])) >= MIN_SIDE]
    if not usable:
        return {"a": A_DEFAULT, "a_chosen": False,
                "a_basis": f"ML Privacy Meter's default: no pair of shadows had {MIN_SIDE} "
                           "calibration members and non-members to choose a on"}
    a, curve = rmia.choose_a(usable, seed)
    return {"a": a, "a_chosen": True, "a_basis": A_BASIS, "a_grid_auc": curve}


def _pairs(calibration: np.ndarray, trained: list[np.ndarray], nonmembers: np.ndarray
           ) -> list[rmia.Pair]:
    """Every ordered pair of shadows (i attacked with j): i's members that j did not
    train on, against the non-member targets (OUT for both)."""
    out = []
    for i, j in ((i, j) for i in range(len(trained)) for j in range(len(trained)) if i != j):
        own = trained[i] & ~trained[j]
        out.append((calibration[i, own], calibration[j, own], nonmembers[i], nonmembers[j]))
    return out


def _device(config: dict[str, Any]) -> Any:
    """The device the shadows train on (the training config's, as ``train_job`` reads it)."""
    from engine.device import resolve_device

    return resolve_device(config.get("device", "auto"))


def _rmia(p: np.ndarray, refs: np.ndarray, is_member: np.ndarray, a: float, seed: int
          ) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray]]:
    fold = rmia.halves(int((~is_member).sum()), seed)
    scores = rmia.attack(p[is_member], refs[:, is_member], p[~is_member], refs[:, ~is_member],
                         a, fold)
    return summary(*scores), scores


def shadow_confidence(dataset: Any, pool: np.ndarray, config: dict[str, Any],
                      backbone_state: Any, x: Any, y: np.ndarray, seed: int,
                      index: int) -> tuple[np.ndarray, np.ndarray]:
    """One shadow's logit-scaled confidences and RMIA probabilities on the targets ``x``
    (a Ray task's body)."""
    from engine.jobs import run_job

    return run_job(_shadow_phi(dataset, pool, config, backbone_state, x, y, seed, index, None))


def _shadow_phi(dataset: Any, pool: np.ndarray, config: dict[str, Any], backbone_state: Any,
                x: Any, y: np.ndarray, seed: int, index: int, cancel: CancelToken | None
                ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray]]:
    shadow = yield from _shadow(dataset, pool, config, backbone_state, seed, index, cancel)
    logits = features_and_logits(shadow, x)[1]
    return (logit_confidence(logits, shadow.class_ids, y),
            rmia.probabilities(logits, shadow.class_ids, y))


def _shadow(dataset: Any, pool: np.ndarray, config: dict[str, Any], backbone_state: Any,
            seed: int, index: int, cancel: CancelToken | None
            ) -> Generator[Progress, None, Any]:
    """One OUT shadow model on a seeded random half of ``pool``."""
    import dataclasses

    from engine.training import TrainConfig, train_job

    half = shadow_half(pool, seed, index)
    data = dataclasses.replace(dataset, train_x=dataset.train_x[half],
                               train_y=dataset.train_y[half])
    cfg = TrainConfig.from_dict({**config, "classes": list(dataset.class_ids),
                                 "seed": int(config.get("seed", 0)) + 1000 * (index + 1)})
    result = yield from train_job(cfg, cancel, dataset=data, backbone_state=backbone_state)
    return result.model


def shadow_half(pool: np.ndarray, seed: int, index: int) -> np.ndarray:
    """The pool rows shadow ``index`` trains on: a seeded random half, sorted."""
    rng = np.random.default_rng([seed, index])
    return np.sort(rng.permutation(pool)[:max(1, len(pool) // 2)])


def _score(logits: np.ndarray, class_ids: list[int], y: np.ndarray, shadows: np.ndarray,
           is_member: np.ndarray, forget: np.ndarray, k: int
           ) -> tuple[dict, dict, np.ndarray]:
    phi = logit_confidence(logits, class_ids, y)
    score = lira_offline(phi, shadows)
    metrics = {"k": k, **roc.summarize(score[is_member], score[~is_member]),
               "forget_auc": _auc(score, is_member, forget),
               "retain_auc": _auc(score, is_member, ~forget)}
    return metrics, roc.chart_points(*roc.roc_curve(score[is_member], score[~is_member])), score


def _auc(score: np.ndarray, is_member: np.ndarray, mask: np.ndarray) -> float:
    inside, outside = score[mask & is_member], score[mask & ~is_member]
    if not len(inside) or not len(outside):
        return 0.5
    return roc.summarize(inside, outside)["auc"]


def _cat(a: Any, b: Any) -> Any:
    from engine.images import Images

    return Images.cat([a, b])
