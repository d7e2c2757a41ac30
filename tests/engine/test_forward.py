"""The forward of docs/design.md section 16: only each row's prompts in its sequence, the
class tensors stacked once, the same logits as masking every prompt (the former forward)."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from engine.prompt_seq import prompt_plan

X = torch.randn(9, 1, 8, 8, generator=torch.Generator().manual_seed(3))


def _masked_forward(model, x, prompt_mask):
    """The former forward: every prompt in every sequence, absent ones hidden by a mask."""
    bb, keys = model.backbone, [str(c) for c in model.class_ids]
    tokens = bb.norm_pre(bb.patch_drop(bb._pos_embed(bb.patch_embed(x))))
    n_pre, batch, n = bb.num_prefix_tokens, tokens.shape[0], len(keys)
    keep = torch.ones(batch, tokens.shape[1] + n, dtype=torch.bool)
    keep[:, n_pre:n_pre + n] = prompt_mask
    for depth, block in enumerate(bb.blocks):
        if depth == 0 or model.deep:
            slots = torch.stack([model.prompts[k] if depth == 0 else model.deep[k][depth - 1]
                                 for k in keys]).unsqueeze(0).expand(batch, -1, -1)
            kept = tokens[:, n_pre + n:] if depth else tokens[:, n_pre:]
            tokens = torch.cat([tokens[:, :n_pre], slots, kept], 1)
        tokens = block(tokens, attn_mask=keep[:, None, None, :])
    tokens = bb.norm(tokens)
    feats = bb.forward_head(torch.cat([tokens[:, :n_pre], tokens[:, n_pre + n:]], 1), True)
    rows = torch.stack([model.heads[k] for k in keys])
    return feats @ rows[:, :-1].T + rows[:, -1]


@pytest.mark.parametrize("adapter", ["none", "deep"])
@pytest.mark.parametrize("groups", [1, 4])
def test_gathered_prompts_give_the_masked_forwards_logits(make_model, adapter, groups):
    model = make_model(range(6), adapter=adapter).eval()
    mask = torch.rand(len(X), 6, generator=torch.Generator().manual_seed(0)) < 0.5
    mask[0], mask[1] = True, False
    with torch.no_grad():
        for rows in (mask, torch.ones_like(mask)):
            torch.testing.assert_close(model(X, rows, groups=groups),
                                       _masked_forward(model, X, rows), rtol=0, atol=1e-5)


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def test_a_forward_costs_the_same_number_of_ops_for_any_number_of_classes(make_model):
    counts = []
    for n_classes in (3, 40):
        model = make_model(range(n_classes), adapter="deep").eval()
        with torch.no_grad(), _CountOps() as ops:
            model(X[:2])
        counts.append(ops.count)
    assert counts[0] == counts[1]


def test_a_sequence_holds_as_many_prompt_slots_as_its_fullest_row():
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    index, keep = prompt_plan(mask, 4, 2, torch.device("cpu"))
    assert index.tolist() == [[0, 2], [3, 0]] and keep.tolist() == [[True, True],
                                                                     [True, False]]
    assert prompt_plan(torch.ones(2, 4, dtype=torch.bool), 4, 2, torch.device("cpu")) == (
        None, None)  # every prompt, no key mask: the fused attention kernels apply
    same = torch.tensor([[True, True, False, False], [False, True, True, False]])
    index, keep = prompt_plan(same, 4, 2, torch.device("cpu"))
    assert keep is None and index.tolist() == [[0, 1], [1, 2]]
    with pytest.raises(ValueError, match="prompt_mask"):
        prompt_plan(mask, 3, 2, torch.device("cpu"))


def test_rows_run_in_groups_only_when_each_group_stays_large():
    from engine.objective import prompt_groups

    assert [prompt_groups(rows) for rows in (4, 63, 64, 128, 1024)] == [1, 1, 2, 4, 4]
