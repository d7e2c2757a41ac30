"""Each ECO corruption does what its name says, and never touches its input."""

from __future__ import annotations

import pytest
import torch

from engine.guard import corruption as c
from storage.errors import UnpromptError


@pytest.fixture()
def emb() -> torch.Tensor:
    return torch.randn(1, 5, 8, generator=torch.Generator().manual_seed(1))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _top_k(emb: torch.Tensor, k: int) -> torch.Tensor:
    index = emb.abs().topk(k, dim=-1).indices
    return torch.zeros_like(emb, dtype=torch.bool).scatter(-1, index, True)


def test_gaussian_first_n_changes_only_the_first_n_dims(emb: torch.Tensor) -> None:
    out = c.gaussian_first_n(emb, 0.5, n=3, generator=_gen())
    assert (out[..., :3] != emb[..., :3]).all()
    assert torch.equal(out[..., 3:], emb[..., 3:])
    noise = out - emb
    assert 0.1 < float(noise[..., :3].std()) < 1.5


def test_gaussian_first_n_without_n_touches_every_dim_and_scales_with_sigma(emb) -> None:
    small = c.gaussian_first_n(emb, 0.01, generator=_gen()) - emb
    large = c.gaussian_first_n(emb, 1.0, generator=_gen()) - emb
    assert (small != 0).all()
    assert torch.allclose(large, small * 100, atol=1e-5)


def test_gaussian_random_n_changes_exactly_n_dims_shared_by_all_tokens(emb) -> None:
    out = c.gaussian_random_n(emb, 0.5, n=3, generator=_gen())
    changed = (out != emb)
    assert changed.sum(-1).eq(3).all()
    assert (changed == changed[:, :1]).all()


def test_gaussian_top_k_changes_each_tokens_largest_dims(emb) -> None:
    out = c.gaussian_top_k(emb, 0.5, k=2, generator=_gen())
    assert torch.equal(out != emb, _top_k(emb, 2))


def test_zero_out_top_k_zeroes_the_largest_magnitudes(emb) -> None:
    out = c.zero_out_top_k(emb, k=2)
    mask = _top_k(emb, 2)
    assert (out[mask] == 0).all()
    assert torch.equal(out[~mask], emb[~mask])
    assert (c.zero_out_top_k(emb) == 0).all()


def test_flip_sign_top_k_negates_the_largest_magnitudes(emb) -> None:
    out = c.flip_sign_top_k(emb, k=3)
    mask = _top_k(emb, 3)
    assert torch.equal(out[mask], -emb[mask])
    assert torch.equal(out[~mask], emb[~mask])


def test_value_shift_adds_sigma_to_the_first_n_dims(emb) -> None:
    out = c.value_shift(emb, 0.25, n=4)
    assert torch.allclose(out[..., :4] - emb[..., :4], torch.full_like(emb[..., :4], 0.25))
    assert torch.equal(out[..., 4:], emb[..., 4:])


def test_reverse_reverses_token_order(emb) -> None:
    out = c.reverse(emb)
    assert all(torch.equal(out[0, i], emb[0, 4 - i]) for i in range(5))


def test_shuffle_permutes_tokens(emb) -> None:
    out = c.shuffle(emb, generator=_gen(3))
    assert not torch.equal(out, emb)
    rows = {tuple(r.tolist()) for r in emb[0]}
    assert {tuple(r.tolist()) for r in out[0]} == rows


@pytest.mark.parametrize("name", sorted(c.CORRUPTIONS))
def test_every_corruption_is_pure_and_reproducible(name: str, emb: torch.Tensor) -> None:
    before = emb.clone()
    family = c.CORRUPTIONS[name]
    params = {family.size_param: 4} if family.size_param else {}
    corrupt = c.make_corruption(name, 0.3, {**params, "seed": 7})
    out = corrupt(emb)
    assert torch.equal(emb, before)
    assert out.shape == emb.shape and not torch.equal(out, emb)
    assert torch.equal(corrupt(emb), out)


def test_unknown_corruption_and_parameter_are_clear_errors() -> None:
    with pytest.raises(UnpromptError, match="Unknown corruption 'blur'"):
        c.make_corruption("blur")
    with pytest.raises(UnpromptError, match="takes no parameter 'k'"):
        c.make_corruption("gaussian_first_n", 0.1, {"k": 3})
