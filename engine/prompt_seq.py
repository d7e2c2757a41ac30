"""How class prompts enter a ViT sequence (docs/design.md section 16).

A ``(B, C)`` prompt mask becomes a gather of each row's present prompts, padded to the
fullest row; only the padding is hidden from attention, and nothing is when no row is
padded. Rows can run in groups of similar prompt counts, each padded to its own longest.
"""

from __future__ import annotations

from typing import Any

import torch

from engine.device import to_device


def slot_tokens(tables: dict[str, Any], depth: int, index: torch.Tensor | None,
           batch: int) -> torch.Tensor | None:
    """Prompt tokens entering block ``depth``: the prompts, then each class's deep tokens."""
    if depth == 0:
        table = tables["prompts"]
    elif tables["deep"] is not None:
        table = tables["deep"][:, depth - 1]
    else:
        return None
    if index is None:
        return table.unsqueeze(0).expand(batch, -1, -1)
    return table[index]


def prompt_plan(prompt_mask: torch.Tensor | None, n_classes: int, batch: int,
                device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Which prompt rows each sample's sequence holds: ``index`` ``(B, K)`` (K the most
    any row has; None = every prompt) and ``keep`` ``(B, K)`` (None when no row is padded).

    Built where the mask lives (the host, in training) and moved once, so the forward
    never waits on the device to learn K."""
    if prompt_mask is None or n_classes == 0:
        return None, None
    if prompt_mask.shape != (batch, n_classes):
        raise ValueError(f"prompt_mask must be (batch, {n_classes}), "
                         f"got {tuple(prompt_mask.shape)}")
    present = prompt_mask.to(torch.bool)
    counts = present.sum(dim=1)
    width = int(counts.max()) if batch else 0
    if width == n_classes and bool(present.all()):
        return None, None
    order = present.to(torch.uint8).argsort(dim=1, descending=True, stable=True)[:, :width]
    keep = torch.arange(width, device=present.device) < counts[:, None]
    full = bool(keep.all())
    return to_device(order, device), None if full else to_device(keep, device)


def key_mask(keep: torch.Tensor | None, length: int, n_pre: int) -> torch.Tensor | None:
    """Key-padding mask hiding the padded prompt slots from every query (None: none padded,
    so attention runs on the fused kernels without a mask)."""
    if keep is None:
        return None
    mask = torch.ones(keep.shape[0], length, dtype=torch.bool, device=keep.device)
    mask[:, n_pre:n_pre + keep.shape[1]] = keep
    return mask[:, None, None, :]


def grouped(run: Any, prompt_mask: torch.Tensor, groups: int) -> torch.Tensor:
    """``run(rows, mask)`` on groups of rows sorted by prompt count; logits in row order."""
    order = prompt_mask.to(torch.bool).sum(dim=1).argsort(stable=True)
    outs = [run(rows, prompt_mask[rows])
            for rows in order.tensor_split(min(groups, len(order)))]
    logits = torch.cat(outs)
    return logits[to_device(order.argsort(), logits.device)]
