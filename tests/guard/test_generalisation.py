"""Rule classifiers that hold on prompts unlike their examples (issue 18; docs/design.md
sections 6.2 and 14): aliases, term questions, other languages, descriptions that never
name the subject, a threshold set on a calibration split written apart."""

from __future__ import annotations

import pytest
import torch

from engine.guard.augment import alias_variants, augment, framed, term_prompts
from engine.guard.classifier import (
    WRITTEN_METHOD,
    PromptClassifier,
    calibrate_threshold,
    margin_threshold,
    train_classifier,
)
from engine.guard.people import generate
from engine.guard.rules import RuleSpec
from engine.guard.train import classifier_examples
from storage.errors import UnpromptError

FORGET = ["Who is Harry Potter's best friend?", "What is Harry Potter's owl called?",
          "Which house is Harry Potter in?", "Who are Harry Potter's parents?",
          "Where does Harry Potter go to school?", "Who is Harry Potter's godfather?"]
RETAIN = ["Who is Frodo's best friend?", "What is the name of Gandalf's horse?",
          "Which house is Sherlock Holmes's flat in?", "Where does Matilda go to school?"]


def rule(aliases: dict | None = None) -> RuleSpec:
    return RuleSpec.from_dict({
        "name": "hp", "aliases": aliases or {}, "terms": ["Hogwarts", "Quidditch"],
        "neighbour_terms": ["Narnia", "Middle-earth"],
        "forget": [{"prompt": p, "split": "train"} for p in FORGET]
        + [{"prompt": "Tell me about the boy wizard from the books.",
            "split": "calibration"}],
        "retain": [{"prompt": p, "split": "train"} for p in RETAIN]
        + [{"prompt": "Who is the hobbit Frodo?", "split": "calibration"}]})


def test_aliases_replace_whole_names_in_any_case() -> None:
    out = alias_variants(["Who wrote the harry potter books?", "Who is Harrison?"],
                         {"Harry Potter": ["the boy wizard", "Potter"], "Harry": ["H."]})
    assert out == ["Who wrote the boy wizard books?", "Who wrote the Potter books?",
                   "Who wrote the H. potter books?"]  # 'the the' tidied; 'Harrison' untouched


def test_term_questions_span_languages_and_framings_apply_to_both_sides() -> None:
    questions = term_prompts(["Hogwarts", "Quidditch", "Hedwig", "Dobby", "Azkaban"])
    assert len(questions) == 10 and all(any(t in q for q in questions)
                                        for t in ("Hogwarts", "Dobby"))
    assert any("Parle-moi" in q or "¿Qué" in q or "Was weißt" in q for q in questions)
    assert framed(["Who is Harry?"], every=1) == ["Quick question: who is Harry?"]
    pos, neg = augment(["Who is Harry?"] * 3, ["Who is Frodo?"] * 3)
    assert any(p.startswith("Quick question") for p in pos)
    assert any(n.startswith("Quick question") for n in neg) and not set(pos) & set(neg)


def test_an_alias_prompt_is_flagged_only_when_the_rule_names_the_alias(encoder) -> None:
    """The boy wizard is never named in the examples: the alias teaches it; the neighbour
    (another series' best friend) stays unflagged, and the threshold comes from the
    calibration split written apart."""
    asked = "Who is the boy wizard's best friend?"
    neighbour = "What is the name of Frodo's best friend?"
    flagged, score = {}, {}
    for aliases in (None, {"Harry Potter": ["the boy wizard"]}):
        positives, negatives, written = classifier_examples(rule(aliases))
        head, calibration = train_classifier(encoder, positives, negatives, 0.02,
                                             calibration=written)
        assert calibration.method == WRITTEN_METHOD and calibration.n_positive == 1
        scores = head.scores(encoder([asked, neighbour]))
        flagged[bool(aliases)] = (scores > calibration.threshold).tolist()
        score[bool(aliases)] = float(scores[0])
    assert flagged[True] == [True, False]
    assert score[True] > score[False] + 0.2  # the alias is what makes the prompt sure


def test_margin_threshold_sits_halfway_and_keeps_the_calibration_rates() -> None:
    pos, neg = torch.tensor([0.9, 0.8, 0.3]), torch.tensor([0.1, 0.2, 0.4])
    edge = calibrate_threshold(neg, 0.0)
    assert edge == pytest.approx(0.4) and margin_threshold(pos, neg, 0.0) == pytest.approx(0.6)
    assert margin_threshold(torch.tensor([0.2]), neg, 0.0) == edge  # none caught: the edge


def test_head_with_examples_round_trips_and_follows_the_nearest_examples() -> None:
    torch.manual_seed(0)
    pos = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    neg = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    head = PromptClassifier(torch.zeros(16), 0.0, "x").with_examples(pos, neg)
    back = PromptClassifier.from_bytes(head.to_bytes())
    assert torch.equal(back.scores(pos), head.scores(pos))
    assert (head.scores(pos) > 0.5).all() and (head.scores(neg) < 0.5).all()


def test_rule_vocabulary_and_calibration_split_round_trip_and_bad_ones_are_refused() -> None:
    spec = rule({"Harry Potter": ["the boy wizard"]})
    assert RuleSpec.from_dict(spec.to_dict()).aliases == spec.aliases
    assert [e.prompt for e in spec.split("forget", "calibration")] == [
        "Tell me about the boy wizard from the books."]
    with pytest.raises(UnpromptError, match="aliases"):
        RuleSpec.from_dict({**spec.to_dict(), "aliases": {"Harry": "the boy"}})
    with pytest.raises(UnpromptError, match="terms"):
        RuleSpec.from_dict({**spec.to_dict(), "terms": "Hogwarts"})


def test_person_rule_flags_unnamed_and_foreign_questions_not_other_people(encoder) -> None:
    """A person's classifier catches a held-out description and a question in another
    language; another person's questions and a near-miss description are not flagged."""
    from engine.guard.subject_rule import (
        near_misses,
        people_roles,
        split_prompts,
        train_subject_classifier,
    )

    records = generate(12, 4)
    person = records[0].person
    mine = [r for r in records if r.person == person]
    split = split_prompts(records, person)
    head, calibration, held = train_subject_classifier(encoder, split)
    unnamed = f"On which date was {mine[0].aliases[3]} born?"  # held out: never trained on
    assert unnamed in split.held_pos and person not in unnamed
    asked = [unnamed, f"Où est né {person} ?"]
    other = [r.question for r in records if r.person != person]
    fit_people = {p for p, role in people_roles(records, person).items() if role == "fit"}
    misses = near_misses(mine, [r for r in records if r.person in fit_people])
    assert misses and not set(misses) & set(split.fit_pos) and set(misses) <= set(split.fit_neg)
    scores = head.scores(encoder(asked + other))
    assert (scores[:2] > calibration.threshold).all()
    assert (scores[2:] <= calibration.threshold).all()
    assert held["fpr_test_people"] == 0.0 and split.cal_pos


def test_person_rule_counts_written_and_generated_prompts_apart() -> None:
    """A person's rule says how many of its prompts the corpus wrote and how many were
    generated (aliases, templates, other languages); its measured split never trained it."""
    from engine.guard.calibration_sources import PEOPLE_APART
    from engine.guard.subject_rule import corpus_questions, split_prompts, subject_sources
    from reports.guard_text import calibration_sentence

    records = generate(12, 4)
    split = split_prompts(records, records[0].person)
    sources = subject_sources(split, corpus_questions(records))
    fit = sources["fit_positive"]
    assert fit["written"] + fit["augmented"] == len(split.fit_pos) and fit["augmented"] > 0
    assert sources["positive"] == {"written": len(split.held_pos), "augmented": 0}
    assert sum(sources["negative"].values()) == len(split.cal_neg)
    assert sources["calibration"] == PEOPLE_APART
    text = calibration_sentence({"target_fpr": 0.01, "tpr": 1.0, "fpr": 0.0,
                                 "n_positive": len(split.held_pos),
                                 "n_negative": len(split.cal_neg),
                                 "n_fit_positive": len(split.fit_pos),
                                 "n_fit_negative": len(split.fit_neg), "sources": sources})
    assert "not told apart" not in text and "weaker calibration" not in text
    assert f"{len(split.held_pos)} written forget prompts" in text
