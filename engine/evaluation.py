"""Evaluation of image models, batch by batch on the job's device (docs/design.md section 16).

``evaluate`` counts hits per class on the device and the host reads one small table at
the end; the images come from any ``engine.images`` batch source (memory or streamed).
"""

from __future__ import annotations

from typing import Any

import torch

from engine.device import model_device, to_device, to_host
from engine.images import as_images, in_order


@torch.no_grad()
def predict_logits(model: Any, x: torch.Tensor, device: Any = None,
                   batch_size: int = 512) -> torch.Tensor:
    """Logits over ``model.class_ids`` with every remaining prompt present, left on
    ``device`` (the model's own by default), batch by batch from wherever ``x`` lives."""
    device = model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    source = as_images(x)
    outs = [model(xb) for xb in source.batches(in_order(len(source), batch_size), device)]
    model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0, len(model.class_ids), device=device)


def evaluate(model: Any, x: torch.Tensor, y: torch.Tensor,
             device: Any = None) -> tuple[dict[int, float], float]:
    """Per-class accuracy (by class id; a removed class scores 0) and overall fraction.

    Counted on the device; the host reads one small table at the end."""
    device = model_device(model) if device is None else torch.device(device)
    labels = to_host(y).long() if y.device.type != "cpu" else y.long()
    present = sorted(set(labels.tolist()))
    logits = predict_logits(model, x, device)
    ids = torch.tensor(model.class_ids, dtype=torch.long, device=device)
    pred = ids[logits.argmax(dim=-1)] if len(ids) else torch.full(
        (len(x),), -1, dtype=torch.long, device=device)
    lookup = torch.zeros(max(present, default=0) + 1, dtype=torch.long)
    lookup[present] = torch.arange(len(present))
    slot = to_device(lookup[labels], device)
    hit = (pred == to_device(labels, device)).float()
    table = torch.zeros(2, len(present), device=device)
    table[0].index_add_(0, slot, hit)
    table[1].index_add_(0, slot, torch.ones_like(hit))
    hits, counts = to_host(table).tolist()
    per_class = {c: hits[i] / max(counts[i], 1.0) for i, c in enumerate(present)}
    return per_class, (sum(hits) / len(labels) if len(labels) else 0.0)


@torch.no_grad()
def plain_accuracy(net: torch.nn.Module, x: torch.Tensor, cols: torch.Tensor,
                    device: Any) -> float:
    net.eval()
    source = as_images(x)
    pred = torch.cat([net(xb).argmax(-1)
                      for xb in source.batches(in_order(len(source), 512), device)])
    return to_host((pred == cols).float().mean()).item() if len(cols) else 0.0
