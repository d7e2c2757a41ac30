"""ECO's embedding corruptions (docs/design.md section 6) as pure functions.

Each function takes an embeddings tensor shaped ``(..., tokens, dims)`` and returns a new
tensor; the input is never modified. ``sigma`` is the strength where a family has one
(noise standard deviation or shift amount); ``n`` / ``k`` pick how many dimensions are
touched (``None`` = all). Noise comes from an explicit ``torch.Generator`` so that a
guarded answer is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from storage.errors import UnpromptError

Tensor = torch.Tensor


def _noise(like: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    noise = torch.randn(like.shape, generator=generator, dtype=torch.float32, device="cpu")
    return (noise * float(sigma)).to(device=like.device, dtype=like.dtype)


def _top_k_mask(emb: Tensor, k: int | None) -> Tensor:
    """Boolean mask of the ``k`` largest-magnitude dimensions of every token."""
    k = emb.shape[-1] if k is None else min(int(k), emb.shape[-1])
    index = emb.abs().topk(k, dim=-1).indices
    return torch.zeros_like(emb, dtype=torch.bool).scatter(-1, index, True)


def gaussian_first_n(emb: Tensor, sigma: float, n: int | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """Add N(0, sigma^2) noise to the first ``n`` dimensions."""
    out = emb.clone()
    out[..., :n] += _noise(out[..., :n], sigma, generator)
    return out


def gaussian_random_n(emb: Tensor, sigma: float, n: int | None = None,
                      generator: torch.Generator | None = None) -> Tensor:
    """Add N(0, sigma^2) noise to ``n`` randomly chosen dimensions (the same for every token)."""
    dims = emb.shape[-1] if n is None else min(int(n), emb.shape[-1])
    chosen = torch.randperm(emb.shape[-1], generator=generator)[:dims].to(emb.device)
    out = emb.clone()
    out[..., chosen] += _noise(out[..., chosen], sigma, generator)
    return out


def gaussian_top_k(emb: Tensor, sigma: float, k: int | None = None,
                   generator: torch.Generator | None = None) -> Tensor:
    """Add N(0, sigma^2) noise to each token's ``k`` largest-magnitude dimensions."""
    mask = _top_k_mask(emb, k)
    return emb + _noise(emb, sigma, generator) * mask


def zero_out_top_k(emb: Tensor, k: int | None = None) -> Tensor:
    """Set each token's ``k`` largest-magnitude dimensions to zero."""
    return emb.masked_fill(_top_k_mask(emb, k), 0.0)


def flip_sign_top_k(emb: Tensor, k: int | None = None) -> Tensor:
    """Negate each token's ``k`` largest-magnitude dimensions."""
    return torch.where(_top_k_mask(emb, k), -emb, emb)


def value_shift(emb: Tensor, sigma: float, n: int | None = None) -> Tensor:
    """Add the constant ``sigma`` to the first ``n`` dimensions."""
    out = emb.clone()
    out[..., :n] += float(sigma)
    return out


def reverse(emb: Tensor) -> Tensor:
    """Reverse the order of the tokens."""
    return emb.flip(-2)


def shuffle(emb: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Permute the order of the tokens at random."""
    order = torch.randperm(emb.shape[-2], generator=generator).to(emb.device)
    return emb[..., order, :]


@dataclass(frozen=True)
class Family:
    """One corruption family: its function, whether it takes ``sigma``, its size parameter."""

    fn: Callable[..., Tensor]
    uses_sigma: bool
    size_param: str | None
    random: bool


CORRUPTIONS: dict[str, Family] = {
    "gaussian_first_n": Family(gaussian_first_n, True, "n", True),
    "gaussian_random_n": Family(gaussian_random_n, True, "n", True),
    "gaussian_top_k": Family(gaussian_top_k, True, "k", True),
    "zero_out_top_k": Family(zero_out_top_k, False, "k", False),
    "flip_sign_top_k": Family(flip_sign_top_k, False, "k", False),
    "value_shift": Family(value_shift, True, "n", False),
    "reverse": Family(reverse, False, None, False),
    "shuffle": Family(shuffle, False, None, True),
}
DEFAULT_CORRUPTION = "gaussian_first_n"


def corruption_family(name: str) -> Family:
    """The family called ``name``; an UnpromptError names the choices otherwise."""
    if name not in CORRUPTIONS:
        raise UnpromptError(f"Unknown corruption {name!r}; choose one of: "
                            f"{', '.join(sorted(CORRUPTIONS))}.")
    return CORRUPTIONS[name]


def make_corruption(name: str, sigma: float = 0.0, params: dict[str, Any] | None = None
                    ) -> Callable[[Tensor], Tensor]:
    """A one-argument corruption with its parameters bound; noise is re-seeded per call.

    ``params`` may hold the size parameter (``n`` or ``k``), ``seed`` (default 0) and the
    token scope (``SCOPE_KEY``: which tokens to corrupt, the hook's concern, not the
    family's; engine.guard.scope).
    """
    from engine.guard.scope import SCOPE_KEY

    family = corruption_family(name)
    params = dict(params or {})
    params.pop(SCOPE_KEY, None)
    seed = int(params.pop("seed", 0))
    unknown = set(params) - ({family.size_param} if family.size_param else set())
    if unknown:
        raise UnpromptError(f"Corruption {name!r} takes no parameter {sorted(unknown)[0]!r}.")
    if family.uses_sigma:
        params["sigma"] = float(sigma)

    def corrupt(emb: Tensor) -> Tensor:
        kwargs = dict(params)
        if family.random:
            kwargs["generator"] = torch.Generator().manual_seed(seed)
        return family.fn(emb, **kwargs)

    return corrupt
