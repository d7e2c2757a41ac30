"""The wrong pass on a share of each batch's rows (docs/design.md section 4.2): which rows,
the logits of masking, and configs written before the option keep the paper's objective."""

from __future__ import annotations

import pytest
import torch

from engine.objective import (
    subset_mask,
    two_pass_loss,
    two_pass_masks,
    two_pass_terms,
    wrong_pass_rows,
)
from engine.training import FULL_WRONG_ROWS, TrainConfig
from storage.errors import UnpromptError
from tests.engine.test_forward import _masked_forward

X = torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(5))
COLS = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 2, 3])


def test_a_share_of_the_rows_is_drawn_without_repeats_and_at_least_one():
    gen = torch.Generator().manual_seed(0)
    rows = wrong_pass_rows(64, 0.4, gen)
    assert len(rows) == 26 and rows.unique().tolist() == rows.tolist()  # sorted, distinct
    assert 0 <= rows.min() and rows.max() < 64
    assert len(wrong_pass_rows(3, 0.01, gen)) == 1
    state = gen.get_state()
    assert wrong_pass_rows(64, 1.0, gen) is None and torch.equal(gen.get_state(), state)


@pytest.mark.parametrize("share", [0.4, 1.0])
def test_the_loss_is_the_objective_on_the_logits_of_masking(make_model, share):
    model = make_model(range(6)).eval()
    loss, correct = two_pass_loss(model, X, COLS, torch.Generator().manual_seed(1), share)
    gen = torch.Generator().manual_seed(1)  # the same draws, in the same order
    wrong = wrong_pass_rows(len(X), share, gen)
    masks = two_pass_masks(COLS, 6, gen, wrong=wrong)
    picked = torch.arange(len(X)) if wrong is None else wrong
    assert len(masks) == len(X) + len(picked)
    assert masks[torch.arange(len(X)), COLS].all()  # mixed rows: own prompt present
    assert not masks[len(X) + torch.arange(len(picked)), COLS[picked]].any()  # wrong: absent
    with torch.no_grad():
        logits = _masked_forward(model, torch.cat([X, X[picked]]), masks)
    expected, hits = two_pass_terms(logits, COLS, len(X), len(picked))
    torch.testing.assert_close(loss.detach(), expected, rtol=0, atol=1e-5)
    assert torch.equal(correct, hits)


def test_share_one_is_the_paper_objective_draw_for_draw(make_model):
    model = make_model(range(6)).eval()
    loss, _ = two_pass_loss(model, X, COLS, torch.Generator().manual_seed(2), 1.0)
    gen = torch.Generator().manual_seed(2)
    masks = torch.cat([subset_mask(COLS, 6, gen, True), subset_mask(COLS, 6, gen, False)])
    with torch.no_grad():
        before, _ = two_pass_terms(model(torch.cat([X, X]), masks), COLS, len(X))
    torch.testing.assert_close(loss.detach(), before, rtol=0, atol=1e-6)


def test_full_mode_defaults_to_the_share_and_old_configs_keep_the_paper_objective():
    assert TrainConfig.for_dataset("digits").wrong_rows == FULL_WRONG_ROWS
    # a batch too small to spare rows keeps the paper's objective; set explicitly, it is kept
    assert TrainConfig.for_dataset("digits", batch_size=16).wrong_rows == 1.0
    assert TrainConfig.for_dataset("digits", batch_size=16, wrong_rows=0.5).wrong_rows == 0.5
    assert TrainConfig.for_dataset("digits", mode="lora").wrong_rows == 1.0
    assert TrainConfig.for_dataset("digits", wrong_rows=1.0).wrong_rows == 1.0
    saved = TrainConfig.for_dataset("digits").to_dict()
    assert saved["wrong_rows"] == FULL_WRONG_ROWS  # recorded with the model
    del saved["wrong_rows"]  # a config written before the option
    assert TrainConfig.from_dict(saved).wrong_rows == 1.0


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.5, "half", None, True])
def test_a_share_outside_zero_to_one_is_refused(bad):
    with pytest.raises(UnpromptError, match="wrong_rows must be a share"):
        TrainConfig.from_dict({"wrong_rows": bad})
