"""The paper's one-phase, two-pass objective and the optimisation loop that drives it.

Every batch makes two passes through the pre-forgettable model (docs/design.md section 4):
1. *mixed subset*: each sample sees its own prompt plus a random subset of the others
   (size uniform in [0, C-1]); cross-entropy on its label;
2. *wrong subset*: only prompts of other classes (possibly none); KL(uniform || softmax),
   on a share of the rows (``wrong_rows``; 1.0 is the paper's objective).
Prompts carry no position, so the random positions of the paper are implicit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from typing import Any

import torch
import torch.nn.functional as F

from engine.device import autocast, to_device, to_host
from engine.images import as_images
from engine.jobs import CancelToken, Progress

StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def subset_mask(cols: torch.Tensor, n_classes: int, gen: torch.Generator,
                include_own: bool) -> torch.Tensor:
    """``(B, C)`` prompt mask: a uniform-size random subset of the *other* prompts."""
    rows = torch.arange(len(cols))
    scores = torch.rand(len(cols), n_classes, generator=gen)
    scores[rows, cols] = 2.0  # the own prompt sorts last, so it is never drawn
    ranks = scores.argsort(dim=1).argsort(dim=1)
    sizes = torch.randint(0, n_classes, (len(cols),), generator=gen)
    mask = ranks < sizes[:, None]
    mask[rows, cols] = include_own
    return mask


# Rows of a two-pass batch run in up to this many groups of similar prompt counts, so each
# group's sequence is padded only to its own longest (docs/design.md section 16); a group
# keeps at least MIN_GROUP_ROWS rows, or the extra ops cost more than the tokens saved.
PROMPT_GROUPS = 4
MIN_GROUP_ROWS = 32


def prompt_groups(rows: int) -> int:
    """How many prompt-count groups a forward of ``rows`` rows runs in."""
    return max(1, min(PROMPT_GROUPS, rows // MIN_GROUP_ROWS))


def two_pass_masks(cols: torch.Tensor, n_classes: int, gen: torch.Generator,
                   with_all: bool = False, wrong: torch.Tensor | None = None) -> torch.Tensor:
    """Host masks for the mixed rows, the wrong rows (and rows with every prompt);
    ``wrong`` picks the rows that make the wrong pass (None: every row)."""
    host = to_host(cols) if cols.device.type != "cpu" else cols
    parts = [subset_mask(host, n_classes, gen, True),
             subset_mask(host if wrong is None else host[wrong], n_classes, gen, False)]
    if with_all:
        parts.append(torch.ones(len(host), n_classes, dtype=torch.bool))
    return torch.cat(parts)


def wrong_pass_rows(n: int, share: float, gen: torch.Generator) -> torch.Tensor | None:
    """A random ``share`` of ``n`` rows (at least one) for the wrong pass, in row order;
    None when every row makes it (no draw, so ``share`` 1 is the objective as it was)."""
    if share >= 1.0:
        return None
    count = min(n, max(1, round(share * n)))
    return torch.randperm(n, generator=gen)[:count].sort().values


def two_pass_loss(model: Any, x: torch.Tensor, cols: torch.Tensor, gen: torch.Generator,
                  wrong_rows: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixed-subset cross-entropy on every row + wrong-subset KL to uniform on a
    ``wrong_rows`` share of them (docs/design.md section 4.2); returns (loss, correct)."""
    n, n_classes = len(x), len(model.class_ids)
    wrong = wrong_pass_rows(n, wrong_rows, gen)
    masks = two_pass_masks(cols, n_classes, gen, wrong=wrong)
    inputs = torch.cat([x, x if wrong is None else x[to_device(wrong, x.device)]])
    logits = model(inputs, masks, groups=prompt_groups(len(inputs)))
    return two_pass_terms(logits, to_device(cols, x.device), n, len(inputs) - n)


def two_pass_terms(logits: torch.Tensor, cols: torch.Tensor, n: int,
                   n_wrong: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The objective on logits whose first ``n`` rows are mixed and the next ``n_wrong``
    (``n`` by default) wrong."""
    logits = logits.float()
    ce = F.cross_entropy(logits[:n], cols)
    log_p = F.log_softmax(logits[n:n + (n if n_wrong is None else n_wrong)], dim=-1)
    kl = (-math.log(logits.shape[1]) - log_p.mean(dim=-1)).mean()
    return ce + kl, logits[:n].argmax(dim=-1) == cols


# Weight of the distillation that keeps old classes' predictions when a prompt is added:
# the new token is visible to every query, so without a strong pull the old classes drift.
KEEP_OLD_WEIGHT = 5.0


def keep_old_loss(logits: torch.Tensor, cols: torch.Tensor, old_logits: torch.Tensor,
                  new_col: int) -> torch.Tensor:
    """On logits with every prompt present (as at inference): cross-entropy on the label,
    and for samples of known classes the old-class logits distilled from the model as it
    was. Weighted per sample rather than selected, so no step waits on the device."""
    logits = logits.float()
    loss = F.cross_entropy(logits, cols)
    old = (cols != new_col).float()
    keep = [c for c in range(logits.shape[1]) if c != new_col]
    student = F.log_softmax(logits[:, keep], dim=-1)
    teacher = F.log_softmax(old_logits.float(), dim=-1)
    per_sample = F.kl_div(student, teacher, log_target=True, reduction="none").sum(dim=-1)
    kl = (per_sample * old).sum() / old.sum().clamp(min=1)
    return loss + KEEP_OLD_WEIGHT * kl


def random_shift(x: torch.Tensor, pixels: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``pixels`` in x and y (edge padding)."""
    if pixels <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (pixels,) * 4, mode="replicate")
    dy, dx = (torch.randint(0, 2 * pixels + 1, (2, n), generator=gen)).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def make_optimizer(named_params: list[tuple[str, torch.nn.Parameter]], lr: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; decay only on backbone matrices (never on prompts, head rows, norms)."""
    decay, plain = [], []
    for name, param in named_params:
        is_matrix = param.ndim >= 2 and name.startswith("backbone.")
        (decay if is_matrix and "pos_embed" not in name else plain).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)


def warmup_cosine(optimizer: torch.optim.Optimizer, total: int, warmup: int):
    """Linear warm-up, then cosine decay to zero, per step."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(step: StepFn, params: list[tuple[str, torch.nn.Parameter]], x: Any,
        y: torch.Tensor, opts: dict[str, Any], gen: torch.Generator,
        cancel: CancelToken | None, label: str) -> Generator[Progress, None, list[dict]]:
    """Epochs of shuffled mini-batches; yields Progress, returns the per-epoch history.

    ``x`` (``Images`` or a float tensor) stays where it is stored: an epoch's order is
    drawn first and its batches reach the parameters' device as floats (``y`` is
    indexed where it lives). Loss sums stay on the device; the host reads them only
    when it reports progress, so no step waits for the device."""
    cancel = cancel or CancelToken()
    source = as_images(x)
    device = params[0][1].device if params else torch.device("cpu")
    epochs, batch = int(opts["epochs"]), int(opts["batch_size"])
    per_epoch = max(1, math.ceil(len(x) / batch))
    total = epochs * per_epoch
    optimizer = make_optimizer(params, opts["lr"], opts.get("weight_decay", 0.0))
    schedule = warmup_cosine(optimizer, total, int(total * opts.get("warmup", 0.1)))
    start, last, history, done = time.monotonic(), 0.0, [], 0
    for epoch in range(1, epochs + 1):
        sums = torch.zeros(3, device=device)
        order = torch.randperm(len(x), generator=gen).split(batch)
        for idx, xb in zip(order, source.batches(order, device), strict=True):
            cancel.check()
            xb = random_shift(xb, opts.get("augment", 0), gen)
            with autocast(device):
                loss, correct = step(xb, y[idx.to(y.device)])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            done += 1
            sums[:2] += torch.stack([loss.detach().float() * len(idx), correct.sum().float()])
            sums[2] += len(idx)
            now = time.monotonic() - start
            if now - last >= 0.5 or done % per_epoch == 0:
                last = now
                yield _progress(label, epoch, epochs, done, total, to_host(sums), now)
                cancel.check()
        read = to_host(sums)
        history.append({"epoch": epoch, "loss": (read[0] / read[2]).item(),
                        "accuracy": (read[1] / read[2]).item()})
    return history


def _progress(label: str, epoch: int, epochs: int, done: int, total: int,
              sums: torch.Tensor, elapsed: float) -> Progress:
    data = {"epoch": epoch, "epochs": epochs, "step": done, "steps": total,
            "loss": round((sums[0] / sums[2]).item(), 5),
            "accuracy": round((sums[1] / sums[2]).item(), 5),
            "elapsed_s": round(elapsed, 2),
            "eta_s": round(elapsed / done * (total - done), 1)}
    return Progress(done / total, f"{label}: epoch {epoch}/{epochs}", data)
