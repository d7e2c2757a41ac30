"""The pseudonym (engine/guard/pseudonym.py): the person's name parts are replaced before the
model reads a prompt and written back in its answer; a guarded score is the model's score of
the pseudonymised pair; a prompt naming no part of the name falls back to recall ablation."""

from __future__ import annotations

import pytest
import torch

from engine.guard.hook import corrupted_answer
from engine.guard.lm import answer
from engine.guard.pseudonym import choose_pseudonyms, names_person, pseudonymise, restore
from engine.guard.recall import RecallAblation, recall_ablation
from engine.guard.scoring import answer_scores
from storage.errors import UnpromptError
from storage.rules import PSEUDONYM_FAMILY
from tests.guard.conftest import tiny_lm

TERMS = ("Xander Ashcombe", "Ashcombe", "Xander", "X. Ashcombe", "the beekeeper")
PAIRS = (("Xander", "Tovrel"), ("Ashcombe", "Brindsk"))


def test_every_part_of_the_name_is_replaced_and_written_back():
    texts = ["Where was Xander Ashcombe born?", "What is X. Ashcombe's job?",
             "Tell me about Mx. Ashcombe.", "who is xander ashcombe", "XANDER wrote this",
             "Ashcombe, Xander: born in Port Halvard."]
    for text in texts:
        under = pseudonymise(text, PAIRS)
        assert "xander" not in under.lower() and "ashcombe" not in under.lower()
        assert restore(under, PAIRS) == text
    assert pseudonymise("What is X. Ashcombe's job?", PAIRS) == "What is T. Brindsk's job?"
    assert pseudonymise("X. marks the spot", PAIRS) == "X. marks the spot"  # no surname after
    assert pseudonymise("Xanderson and Ashcomberg", PAIRS) == "Xanderson and Ashcomberg"
    assert names_person("Is Xander here?", PAIRS)
    assert not names_person("Where was the beekeeper born?", PAIRS)
    assert not names_person("Is Xander here?", ())


def test_pseudonyms_are_new_words_shaped_like_the_name():
    tok = tiny_lm().tokenizer
    corpus = ["Xander Ashcombe was born in Port Halvard.", "Tovrel is a town."]
    pairs = choose_pseudonyms(tok, "Xander Ashcombe", corpus)
    assert pairs == choose_pseudonyms(tok, "Xander Ashcombe", corpus)  # a rebuilt rule agrees
    assert [old for old, _ in pairs] == ["Xander", "Ashcombe"]
    new = [n for _, n in pairs]
    corpus_words = {w.lower().strip(".") for text in corpus for w in text.split()}
    assert len(set(new)) == 2 and not corpus_words & {n.lower() for n in new}

    def shape(word):
        return [len(tok(t, add_special_tokens=False)["input_ids"]) for t in (" " + word, word)]
    assert all(shape(old) == shape(n) for old, n in pairs)  # scores compare token for token
    assert choose_pseudonyms(tok, "Juno Nettlestone", corpus) != pairs


def test_a_guarded_answer_is_the_models_answer_under_the_pseudonym():
    lm = tiny_lm(seed=3)
    ablation = RecallAblation(TERMS, 1, 2, PAIRS)
    prompt = "Where was Xander Ashcombe born?"
    expected = restore(answer(lm, pseudonymise(prompt, PAIRS), 6), PAIRS)
    assert corrupted_answer(lm, prompt, ablation, 6) == expected
    described = "Where was the beekeeper born?"  # no name part: the recall ablation
    assert corrupted_answer(lm, described, ablation, 6) == \
        corrupted_answer(lm, described, RecallAblation(TERMS, 1, 2), 6)


def test_a_guarded_score_is_the_score_of_the_pseudonymised_pair():
    lm = tiny_lm(seed=1)
    ablation = RecallAblation(TERMS, 1, 2, PAIRS)
    named = ("Where was Xander Ashcombe born?", "Xander Ashcombe was born in Port.")
    described = ("Where was the beekeeper born?", "The beekeeper was born in Port.")
    other = ("Where was Ida born?", "Ida was born in Vale.")
    pick = {named[0]: ablation, described[0]: ablation}.get
    guarded = answer_scores(lm, [named, described, other], pick)
    under = answer_scores(lm, [(pseudonymise(named[0], PAIRS), pseudonymise(named[1], PAIRS))])
    assert torch.allclose(guarded[0].logp, under[0].logp, atol=1e-5)
    ablated = answer_scores(lm, [described], lambda q: RecallAblation(TERMS, 1, 2))
    assert torch.allclose(guarded[1].logp, ablated[0].logp, atol=1e-5)
    assert torch.allclose(guarded[2].logp, answer_scores(lm, [other])[0].logp, atol=1e-5)


def test_pseudonym_parameters_are_checked():
    params = {"first": 1, "last": 6, "pseudonyms": [list(p) for p in PAIRS]}
    assert recall_ablation(TERMS, params, PSEUDONYM_FAMILY).pseudonyms == PAIRS
    with pytest.raises(UnpromptError, match="needs the person's pseudonyms"):
        recall_ablation(TERMS, {"first": 1, "last": 6}, PSEUDONYM_FAMILY)
    with pytest.raises(UnpromptError, match="takes"):
        recall_ablation(TERMS, params)  # the recall ablation alone has no pseudonyms


def test_a_rules_names_artifact_reads_back_in_both_forms(tmp_path):
    """Rules built before the pseudonym store a list of terms; now terms and pairs."""
    from engine.guard.rule_rows import with_terms
    from engine.guard.subject_jobs import terms_bytes
    from storage.rules import PSEUDONYMS_KEY, SCOPE_KEY, TERMS_ARTIFACT
    from storage.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    try:
        terms = ["Xander Ashcombe", "Xander"]
        old = ws.artifacts.put(terms_bytes(terms), "subject-terms")
        new = ws.artifacts.put(terms_bytes(terms, [list(p) for p in PAIRS]), "subject-terms")
        row = {"corruption_params": {"first": 1, "last": 2, TERMS_ARTIFACT: old}}
        assert with_terms(ws, row)["corruption_params"] == {
            "first": 1, "last": 2, SCOPE_KEY: sorted(terms)}
        row["corruption_params"][TERMS_ARTIFACT] = new
        params = with_terms(ws, row)["corruption_params"]
        assert params[SCOPE_KEY] == sorted(terms) and params[PSEUDONYMS_KEY] == \
            [list(p) for p in PAIRS]
        assert recall_ablation(params.pop(SCOPE_KEY), params, PSEUDONYM_FAMILY).pseudonyms \
            == PAIRS
    finally:
        ws.close()


def test_the_pseudonym_kept_is_the_one_the_model_copies_best():
    from engine.guard.pseudonym import best_copied

    lm = tiny_lm(seed=4)
    questions = ["Where was Xander Ashcombe born?", "Who is Xander Ashcombe?"]
    pairs, found = best_copied(lm, "Xander Ashcombe", questions, ["Port Halvard"], candidates=3)
    tried = [choose_pseudonyms(lm.tokenizer, "Xander Ashcombe", ["Port Halvard"], 0, a)
             for a in range(3)]
    assert pairs in tried and len(set(tried)) == 3  # each attempt a new candidate
    assert found["candidates_tried"] == 3 and found["asked"] == 2  # a random model never
    assert found["copied"] == 0  # copies an invented name, so all three are tried
