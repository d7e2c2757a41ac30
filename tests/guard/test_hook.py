"""The ECO hook: only flagged prompts, only the prompt pass, removed by its handle."""

from __future__ import annotations

import pytest
import torch

from engine.guard.classifier import PromptClassifier, train_classifier
from engine.guard.guard import Guard, GuardRule, guarded_answer
from engine.guard.hook import corrupted_prompt_pass
from engine.guard.lm import answer, encode_prompt
from storage.errors import UnpromptError

FORGET = ["Tell me about Hogwarts castle", "Who teaches at Hogwarts school", "Hogwarts houses",
          "Describe the Hogwarts great hall", "Which ghosts live at Hogwarts", "Hogwarts express"]
OTHER = ["What is the capital of France", "How do I bake bread", "Explain photosynthesis",
         "Who painted the Mona Lisa", "Best running shoes", "How tall is Everest",
         "Tips for learning Spanish", "Why is the sea salty", "How do magnets work",
         "Recommend a jazz album", "What is a prime number", "How do tides work"]
FLAGGED, UNFLAGGED = "What is the Hogwarts motto?", "How long should I boil an egg?"


@pytest.fixture()
def guard(encoder) -> Guard:
    """A rule that flags any prompt mentioning Hogwarts (a fixed head: no training noise)."""
    head = PromptClassifier(encoder(["hogwarts"])[0] * 20.0, -5.0, encoder.name)
    rule = GuardRule("hogwarts", head, 0.5, "gaussian_first_n", {"seed": 0}, 1.0)
    return Guard([rule], encoder)


def test_a_trained_head_separates_the_topic(encoder) -> None:
    head, calibration = train_classifier(encoder, FORGET, OTHER, target_fpr=0.0)
    scores = head.scores(encoder(FORGET + OTHER))
    assert scores[:len(FORGET)].min() > scores[len(FORGET):].max()
    assert calibration.fpr == 0.0
    assert calibration.n_positive + calibration.n_fit_positive == len(FORGET)


class FirstLayerSpy:
    """Records the hidden states entering the first decoder layer, one entry per forward."""

    def __init__(self, lm) -> None:
        self.seen: list[torch.Tensor] = []
        layer = lm.model.model.layers[0]
        self.handle = layer.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        self.seen.append(hidden.detach().clone())

    def close(self) -> None:
        self.handle.remove()


def _embed(lm, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return lm.model.get_input_embeddings()(ids)


def _hooks(lm) -> int:
    return len(lm.model.get_input_embeddings()._forward_hooks)


def test_guard_flags_only_the_topic(guard: Guard) -> None:
    assert guard.classify(FLAGGED).flagged
    assert not guard.classify(UNFLAGGED).flagged


def test_flagged_prompt_is_corrupted_on_its_own_tokens_on_the_prompt_pass_only(lm, guard) -> None:
    spy = FirstLayerSpy(lm)
    try:
        result = guarded_answer(lm, guard, FLAGGED, max_new_tokens=4)
    finally:
        spy.close()
    assert result.flagged and result.rule == "hogwarts"
    encoded = encode_prompt(lm, FLAGGED)
    prompt_pass, decode_steps = spy.seen[0], spy.seen[1:]
    clean = _embed(lm, encoded.input_ids)
    changed = (prompt_pass != clean).any(-1)[0]
    assert torch.equal(changed, encoded.content_mask)
    assert decode_steps and all(step.shape[1] == 1 for step in decode_steps)
    for step in decode_steps:  # decode steps embed the generated tokens untouched
        token = torch.tensor([[_nearest_token(lm, step)]])
        assert torch.equal(step, _embed(lm, token))


def _nearest_token(lm, step: torch.Tensor) -> int:
    weight = lm.model.get_input_embeddings().weight
    return int((weight - step[0, 0]).abs().sum(-1).argmin())


def test_unflagged_prompt_is_untouched(lm, guard) -> None:
    spy = FirstLayerSpy(lm)
    try:
        result = guarded_answer(lm, guard, UNFLAGGED, max_new_tokens=4, unguarded=True)
    finally:
        spy.close()
    assert not result.flagged and result.rule is None
    assert result.answer == result.unguarded_answer == answer(lm, UNFLAGGED, 4)
    encoded = encode_prompt(lm, UNFLAGGED)
    assert torch.equal(spy.seen[0], _embed(lm, encoded.input_ids))


def test_unflagged_logits_are_bit_identical_with_and_without_the_guard(lm, guard) -> None:
    ids = encode_prompt(lm, UNFLAGGED).input_ids
    captured: list[torch.Tensor] = []
    handle = lm.model.lm_head.register_forward_hook(lambda m, i, o: captured.append(o.clone()))
    try:
        answer(lm, UNFLAGGED, 1)
        guarded_answer(lm, guard, UNFLAGGED, max_new_tokens=1)
        guarded_answer(lm, guard, FLAGGED, max_new_tokens=1)  # leaves nothing behind
        answer(lm, UNFLAGGED, 1)
    finally:
        handle.remove()
    assert torch.equal(captured[0], captured[1]) and torch.equal(captured[0], captured[3])
    with torch.no_grad(), corrupted_prompt_pass(lm, lambda e: e * 0, torch.zeros(ids.shape[1],
                                                                                  dtype=bool)):
        masked_nothing = lm.model(ids).logits
    with torch.no_grad():
        plain = lm.model(ids).logits
    assert torch.equal(masked_nothing, plain)


def test_no_hook_is_left_after_generation_even_on_error(lm, guard) -> None:
    foreign = lm.model.get_input_embeddings().register_forward_hook(lambda m, i, o: None)
    try:
        before = _hooks(lm)
        guarded_answer(lm, guard, FLAGGED, max_new_tokens=3)
        assert _hooks(lm) == before
        with pytest.raises(RuntimeError), corrupted_prompt_pass(
                lm, _raise, encode_prompt(lm, FLAGGED).content_mask):
            answer(lm, FLAGGED, 2)
        assert _hooks(lm) == before  # ours is gone, the foreign hook stays
    finally:
        foreign.remove()
    assert _hooks(lm) == before - 1


def _raise(emb: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("corruption failed")


def test_empty_prompt_is_a_clear_error(lm, guard) -> None:
    with pytest.raises(UnpromptError, match="empty"):
        guarded_answer(lm, guard, "   ")


def test_a_prompt_that_could_not_be_corrupted_is_never_answered(lm) -> None:
    from engine.guard.hook import corrupted_answer
    from engine.guard.lm import EncodedPrompt

    encoded = encode_prompt(lm, FLAGGED)
    wrong = EncodedPrompt(encoded.input_ids, encoded.content_mask[:-1])
    with pytest.raises(UnpromptError, match="could not corrupt"):
        corrupted_answer(lm, wrong, lambda e: e * 0, 2)
    assert _hooks(lm) == 0
