"""Engine fixtures: one torch thread, a tiny ViT and small, quick data."""

from __future__ import annotations

import pytest

TINY = {"embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0}


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits():
    """The full digits split at native 8x8 (loaded once per session)."""
    from engine.datasets import load_dataset

    return load_dataset("digits")


@pytest.fixture()
def make_model():
    """Factory for a seeded tiny pre-forgettable ViT on 8x8 grey images."""
    import torch

    from engine.pfm import PreForgettableViT

    def make(class_ids=range(4), mode: str = "full", seed: int = 0, **kwargs):
        torch.manual_seed(seed)
        return PreForgettableViT(class_ids, backbone="vit_tiny_patch16_224", img_size=8,
                                 patch_size=2, in_chans=1, mode=mode, overrides=TINY, **kwargs)

    return make
