"""The recall ablation (engine/guard/recall.py): which tokens it acts on, that a scored answer
sees exactly what a generated one saw, and that nothing outside a flagged prompt changes."""

from __future__ import annotations

import pytest
import torch

from engine.guard.finetune import qa_tensors
from engine.guard.hook import corrupted_answer
from engine.guard.lm import encode_prompt
from engine.guard.recall import (
    RECALL_FAMILY,
    RecallAblation,
    RowMasks,
    causal_name_mask,
    default_layers,
    recall_ablated,
    recall_ablation,
)
from engine.guard.scoring import answer_scores
from storage.errors import UnpromptError
from tests.guard.conftest import tiny_lm

TERMS = ("Xander Ashcombe", "Ashcombe", "Xander")


def test_name_tokens_are_found_as_they_are_written():
    pieces = ["X", "ander", " Ash", "combe", " was", " born", " in", " Port", "."]
    assert causal_name_mask(pieces, TERMS) == [True] * 4 + [False] * 5
    # a word that only starts like the name counts while it could still be it, then not
    assert causal_name_mask(["Xan", "adu", " is"], TERMS) == [True, False, False]
    assert causal_name_mask(["The", " xander", "'s"], TERMS) == [False, True, False]


def test_a_prompt_that_names_nobody_is_ablated_whole():
    lm = tiny_lm()
    ablation = RecallAblation(TERMS, 1, 2)
    for prompt, named in (("Where was Xander born?", True), ("Where was the beekeeper born?",
                                                               False)):
        encoded = encode_prompt(lm, prompt)
        row = RowMasks(lm.tokenizer, ablation, encoded.content_mask.tolist())
        mask = torch.tensor(row.extend(encoded.input_ids[0].tolist()))
        assert not mask[~encoded.content_mask].any()  # never the chat template
        if named:
            text = lm.tokenizer.decode(encoded.input_ids[0][mask].tolist())
            assert text.strip() == "Xander"  # (the space could still be the full name)
        else:
            assert torch.equal(mask, encoded.content_mask)


def test_a_scored_answer_sees_what_the_generation_saw():
    """Greedy decoding under the ablation (one token per forward, key-value cache), then
    the same tokens in one forward under it: each generated token is the argmax there."""
    lm = tiny_lm(seed=3)
    question, ablation = "Tell me about Xander Ashcombe.", RecallAblation(TERMS, 1, 2)
    assert corrupted_answer(lm, question, ablation, max_new_tokens=4) is not None
    named = (question, "Xander Ashcombe is a beekeeper.")
    scored = answer_scores(lm, [named], lambda q: ablation)[0]
    assert (scored.logp - answer_scores(lm, [named])[0].logp).abs().max() > 1e-3
    encoded = encode_prompt(lm, question)
    prompt = encoded.input_ids
    forced = torch.cat([prompt, torch.tensor([lm.tokenizer("Xander Ash",
                        add_special_tokens=False)["input_ids"]])], dim=1)
    content = encoded.content_mask.tolist()
    with recall_ablated(lm, [RowMasks(lm.tokenizer, ablation, content)]), \
            torch.inference_mode():
        out = lm.model.generate(input_ids=forced, max_new_tokens=12, do_sample=False,
                                pad_token_id=lm.tokenizer.pad_token_id)[0]
    with recall_ablated(lm, [RowMasks(lm.tokenizer, ablation, content)]), \
            torch.inference_mode():
        logits = lm.model(input_ids=out[None]).logits[0]
    start = forced.shape[1]
    assert logits[start - 1:-1].argmax(-1).tolist() == out[start:].tolist()


def test_token_by_token_masks_equal_the_whole_sequence_mask():
    """What generation decides one token at a time is what scoring decides at once."""
    lm = tiny_lm()
    ablation = RecallAblation(TERMS, 1, 2)
    seq, _ = qa_tensors(lm, "Who is Xander?", "Xander Ashcombe keeps bees; Xander too.")
    content = encode_prompt(lm, "Who is Xander?").content_mask.tolist()
    whole = RowMasks(lm.tokenizer, ablation, content).extend(seq)
    row = RowMasks(lm.tokenizer, ablation, content)
    stepwise = row.extend(seq[:len(content)])
    for token in seq[len(content):]:
        stepwise += row.extend([token])
    assert stepwise == whole
    answer = lm.tokenizer.decode([t for t, m in zip(seq[len(content):], whole[len(content):],
                                                    strict=True) if m])
    assert answer.replace(" ", "") == "XanderAshcombeXander"


def test_hooks_leave_the_model_as_it_was_and_other_rows_alone():
    lm = tiny_lm(seed=1)
    pairs = [("Where was Xander Ashcombe born?", "Xander Ashcombe was born in Port."),
             ("Where was Ida born?", "Ida was born in Vale.")]
    before = answer_scores(lm, pairs)
    mixed = answer_scores(lm, pairs, lambda q: RecallAblation(TERMS, 1, 2)
                          if "Xander" in q else None)
    after = answer_scores(lm, pairs)
    assert torch.equal(before[0].logp, after[0].logp)  # hooks removed
    assert torch.allclose(mixed[1].logp, before[1].logp, atol=1e-5)  # unflagged row intact
    assert not torch.allclose(mixed[0].logp, before[0].logp)
    rows = [RowMasks(lm.tokenizer, RecallAblation(TERMS, 1, 2),
                     encode_prompt(lm, pairs[0][0]).content_mask.tolist())]
    with recall_ablated(lm, rows) as hooks:
        lm.model(input_ids=encode_prompt(lm, pairs[0][0]).input_ids)
    assert hooks.ablated == len("Xander Ashcombe")  # one token per byte in the tiny model


def test_rule_parameters_are_checked():
    assert recall_ablation(TERMS, {"first": 1, "last": 6}) == RecallAblation(TERMS, 1, 6)
    with pytest.raises(UnpromptError, match=RECALL_FAMILY):
        recall_ablation(TERMS, {"depth": 3})
    assert default_layers(30) == {"first": 1, "last": 6}
    assert default_layers(2) == {"first": 1, "last": 2}
