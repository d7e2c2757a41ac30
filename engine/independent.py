"""The independent mode: classes that forget to the byte (docs/design.md section 17).

Every class owns one Gaussian over the frozen backbone's CLS features: its own mean and
its own covariance, shrunk towards a *pool* covariance measured on non-erasable data only
(the backbone's pretraining classes; a scaled identity when none is declared). Its logit
is the Gaussian log-density. A class's tensors are therefore a deterministic function of
the backbone, the recipe, the class's own images (chosen with its own seed) and the pool,
computed in float64 in dataset order under ``deterministic`` settings: forgetting class A
leaves exactly what training without A gives, and learning class C changes no other byte.
No prompt enters the backbone, so no class reads another class's parameters.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from engine.pfm import PreForgettableViT
from storage.errors import IntegrityError, NotFoundError, RefusedError, UnpromptError

MODE = "independent"
SHRINK = 0.5  # weight of the pool covariance in each class's covariance (chosen on 0-4)
GRID = 2  # readout: the CLS token plus the patch tokens averaged over a GRID x GRID grid
RIDGE = 1e-3  # times the target's mean variance: keeps every covariance invertible
THREADS = 1  # torch threads while deriving: fixed, so the bytes do not depend on the machine's
FEATURE_BATCH = 256  # a class's images go through the backbone in chunks of this many
POOL_KEY = "independent.pool_cov"  # the pool covariance's name in the shared artifact


class IndependentViT(PreForgettableViT):
    """A frozen ViT plus one Gaussian per class (``center`` = mean and bias, ``whiten``)."""

    features_frozen = True  # no class enters ``features``: attacks may compute them once

    def __init__(self, class_ids: Iterable[int] = (),
                 independent: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """``independent``: the mode's settings (recorded in the shared artifact's config);
        ``kwargs``: the backbone options of ``PreForgettableViT``."""
        kwargs.update(mode=MODE, adapter="none")
        super().__init__([], **kwargs)
        self.config["independent"] = {"shrink": SHRINK, "ridge": RIDGE, "threads": THREADS,
                                      "feature_batch": FEATURE_BATCH, "grid": GRID,
                                      "pool": None, **dict(independent or {})}
        self.centers = nn.ParameterDict()
        self.whitens = nn.ParameterDict()
        size = self.feature_dim
        self.register_buffer("pool_cov", torch.zeros(size, size, dtype=torch.float64))
        for cid in sorted(set(int(c) for c in class_ids)):
            self.add_class(cid)
        self.set_trainable()

    @property
    def settings(self) -> dict[str, Any]:
        return self.config["independent"]

    @property
    def feature_dim(self) -> int:
        """Width of ``features``: the CLS token and ``grid**2`` pooled patch tokens."""
        return self.dim * (1 + int(self.settings["grid"]) ** 2)

    @property
    def class_ids(self) -> list[int]:
        return sorted(int(k) for k in getattr(self, "centers", {}).keys())

    def add_class(self, class_id: int) -> None:
        """A neutral Gaussian (mean 0, identity) for ``class_id``; ``derive`` fills it."""
        key = str(int(class_id))
        if key in self.centers:
            raise RefusedError(f"Class {class_id} already has parameters in this model.")
        device, size = self.pool_cov.device, self.feature_dim
        self.centers[key] = nn.Parameter(torch.zeros(size + 1, dtype=torch.float64,
                                                     device=device), requires_grad=False)
        self.whitens[key] = nn.Parameter(torch.eye(size, dtype=torch.float64,
                                                   device=device), requires_grad=False)

    def remove_classes(self, class_ids: Iterable[int]) -> None:
        keys = [str(int(c)) for c in class_ids]
        missing = [k for k in keys if k not in self.centers]
        if missing:
            raise NotFoundError(f"Class {missing[0]} is not (or no longer) in this model.")
        for key in keys:
            del self.centers[key]
            del self.whitens[key]

    def class_parameters(self, class_id: int) -> dict[str, nn.Parameter]:
        key = str(int(class_id))
        if key not in self.centers:
            raise NotFoundError(f"Class {class_id} is not in this model.")
        return {"center": self.centers[key], "whiten": self.whitens[key]}

    def set_trainable(self, only_classes: Iterable[int] | None = None) -> None:
        """The backbone never trains; class tensors only for an attacker's relearn loop."""
        for param in self.backbone.parameters():
            param.requires_grad_(False)
        keep = set() if only_classes is None else {str(int(c)) for c in only_classes}
        for store in (getattr(self, "centers", {}), getattr(self, "whitens", {})):
            for key, param in store.items():
                param.requires_grad_(key in keep)

    def train(self, mode: bool = True) -> IndependentViT:
        nn.Module.train(self, mode)
        self.backbone.eval()
        return self

    def features(self, x: torch.Tensor, prompt_mask: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """The backbone's own readout, no class token in it: the CLS token and the patch
        tokens averaged over a ``grid`` x ``grid`` layout (channel-major)."""
        bb = self.backbone
        tokens = bb.forward_features(x)
        cls = bb.forward_head(tokens, pre_logits=True)
        patches = tokens[:, bb.num_prefix_tokens:]
        height, width = bb.patch_embed.grid_size
        grid = patches.transpose(1, 2).reshape(len(x), self.dim, height, width)
        pooled = nn.functional.adaptive_avg_pool2d(grid, int(self.settings["grid"]))
        return torch.cat([cls, pooled.flatten(1)], dim=1)

    def forward(self, x: torch.Tensor, prompt_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        return self.head_logits(self.features(x))

    def head_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Each class's log-density, computed from its own tensors alone (one class at a
        time, so no class's bytes can change another's logit)."""
        if not self.class_ids:
            return features.new_zeros((features.shape[0], 0))
        f = features.to(torch.float64)
        cols = [class_logit(f, self.centers[str(c)].to(f.device), self.whitens[str(c)]
                            .to(f.device)) for c in self.class_ids]
        return torch.stack(cols, dim=1).to(features.dtype)

    def set_pool(self, pool_cov: torch.Tensor, source: Mapping[str, Any] | None) -> None:
        """The shared, non-erasable covariance every class shrinks towards."""
        with torch.no_grad():
            self.pool_cov.copy_(pool_cov.to(torch.float64))
        self.settings["pool"] = dict(source) if source else None

    def shared_tensors(self) -> dict[str, torch.Tensor]:
        """What the shared artifact holds besides the backbone (``engine.serialize``)."""
        return {POOL_KEY: self.pool_cov.detach().cpu().contiguous()}

    def load_shared_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        if set(tensors) != {POOL_KEY} or tensors[POOL_KEY].shape != self.pool_cov.shape:
            raise IntegrityError("The shared artifact's pool covariance does not fit the model.")
        with torch.no_grad():
            self.pool_cov.copy_(tensors[POOL_KEY])


def class_logit(f: torch.Tensor, center: torch.Tensor, whiten: torch.Tensor) -> torch.Tensor:
    """``bias - |(f - mean) W|^2 / 2``: a Gaussian log-density up to a shared constant."""
    z = (f - center[:-1]) @ whiten
    return center[-1] - 0.5 * (z * z).sum(dim=-1)


def model_type(mode: str | None) -> type[PreForgettableViT]:
    """The model class of a training mode (``engine.serialize`` and ``engine.training``)."""
    return IndependentViT if mode == MODE else PreForgettableViT


# -------------------------------------------------------------------- derivation

@contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count while deriving; restored after."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def environment(threads: int = THREADS) -> dict[str, Any]:
    """What the derived bytes may depend on besides the data: recorded with the model."""
    return {"torch": torch.__version__, "threads": int(threads), "device": "cpu",
            "machine": platform.machine(), "python": platform.python_version()}


@torch.no_grad()
def class_features(model: IndependentViT, images: torch.Tensor) -> torch.Tensor:
    """CLS features of one class's images (in the given order), float64, on the CPU."""
    if model.pool_cov.device.type != "cpu":
        raise UnpromptError("independent class parameters are derived on the CPU")
    was_training = model.training
    model.eval()
    batch = int(model.settings["feature_batch"])
    with deterministic(model.settings["threads"]):
        parts = [model.features(chunk.float().contiguous()).to(torch.float64)
                 for chunk in images.split(batch)]
    model.train(was_training)
    return torch.cat(parts) if parts else torch.zeros(0, model.feature_dim, dtype=torch.float64)


def covariance(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance of float64 features (rows in a fixed order)."""
    n = feats.shape[0]
    mean = feats.sum(dim=0) / n
    centred = feats - mean
    return mean, centred.T @ centred / max(n - 1, 1)


@torch.no_grad()
def derive_class(model: IndependentViT, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The tensors of a class with ``images``: a function of them, the backbone, the pool
    and the recipe only."""
    if len(images) < 2:
        raise UnpromptError("an independent class needs at least 2 images of its own")
    feats = class_features(model, images)
    with deterministic(model.settings["threads"]):
        mean, cov = covariance(feats)
        eye = torch.eye(model.feature_dim, dtype=torch.float64)
        # without declared non-erasable data there is nothing to shrink towards: the own
        # covariance plus the ridge (a scaled identity measured 30 points worse, section 17)
        pooled = bool(model.settings["pool"])
        target = model.pool_cov if pooled else cov
        shrink = float(model.settings["shrink"]) if pooled else 0.0
        ridge = float(model.settings["ridge"]) * float(target.trace()) / model.feature_dim
        sigma = (1 - shrink) * cov + shrink * target + ridge * eye
        chol = torch.linalg.cholesky(sigma)
        whiten = torch.linalg.solve_triangular(chol, eye, upper=False).T.contiguous()
        bias = -torch.log(torch.diagonal(chol)).sum()  # -logdet(sigma) / 2
    return {"center": torch.cat([mean, bias.reshape(1)]), "whiten": whiten}


def set_class(model: IndependentViT, class_id: int, tensors: Mapping[str, torch.Tensor]
              ) -> None:
    """Give ``class_id`` (added if absent) the derived tensors."""
    if int(class_id) not in model.class_ids:
        model.add_class(class_id)
    with torch.no_grad():
        for name, param in model.class_parameters(class_id).items():
            param.copy_(tensors[name])


@torch.no_grad()
def pool_covariance(model: IndependentViT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean within-class covariance of non-erasable data, class by class in label order."""
    covs = []
    for cid in sorted(int(c) for c in torch.unique(y).tolist()):
        feats = class_features(model, x[y == cid])
        if len(feats) >= 2:
            with deterministic(model.settings["threads"]):
                covs.append(covariance(feats)[1])
    if not covs:
        raise UnpromptError("the non-erasable pool data holds no class with 2+ images")
    with deterministic(model.settings["threads"]):
        return torch.stack(covs).sum(dim=0) / len(covs)
