"""The shipped data and rule files: sizes, splits, parsing, key-term matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.guard.knowledge import contains_key
from engine.guard.rules import (
    RuleSpec,
    load_demo_rule,
    load_general_prompts,
    load_ignorant_prompts,
    load_rule_file,
    rule_from_files,
)
from storage.errors import NotFoundError, UnpromptError


def test_demo_rule_has_answered_forget_and_neighbour_prompts_with_held_out_splits() -> None:
    rule = load_demo_rule()
    assert rule.name == "harry-potter"
    assert len([e for e in rule.forget if e.answer and e.keys]) >= 60
    assert len([e for e in rule.retain if e.answer and e.keys]) >= 60
    assert {e.group for e in rule.retain} == {"fantasy", "authors", "magic", "schools",
                                              "real-world", "general"}
    assert rule.general and all(rule.split(p, "test") for p in ("forget", "retain", "general"))
    assert all(len(rule.split(p, "calibration")) >= 30 for p in ("forget", "retain"))
    assert rule.aliases["Harry Potter"] and len(rule.terms) >= 100 and rule.neighbour_terms
    assert len({e.prompt for e in rule.forget}) == len(rule.forget)


def test_general_prompts_are_many_and_distinct() -> None:
    prompts = load_general_prompts()
    assert len(prompts) >= 300 and len({p.prompt for p in prompts}) == len(prompts)
    tests = sum(p.split == "test" for p in prompts)
    assert 0.15 < tests / len(prompts) < 0.35


def test_ignorant_reference_keys_never_appear_in_their_prompts() -> None:
    prompts = load_ignorant_prompts()
    assert len(prompts) >= 20
    assert not any(contains_key(p.prompt, p.keys) for p in prompts)


def test_text_rule_files_parse_prompts_answers_and_keys(tmp_path: Path) -> None:
    forget = tmp_path / "forget.txt"
    forget.write_text("# comment\nWho is Zed?\tZed Smith\tSmith;Zed\n\nWhere is Zed?\n")
    retain = tmp_path / "retain.txt"
    retain.write_text("Who is Ann?\tAnn Lee\n")
    rule = rule_from_files("zed", forget, retain)
    assert [e.keys for e in rule.forget] == [("Smith", "Zed"), ()]
    assert rule.retain[0].keys == ("Ann Lee",)
    assert RuleSpec.from_dict(rule.to_dict()).to_dict() == rule.to_dict()


def test_bad_rule_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_rule_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UnpromptError, match="not valid JSON"):
        load_rule_file(broken)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    with pytest.raises(UnpromptError, match="no forget examples"):
        load_rule_file(empty)


def test_key_terms_match_whole_words_ignoring_case() -> None:
    assert contains_key("His friend is RON Weasley.", ["Ron"])
    assert not contains_key("It is made of iron.", ["Ron"])
    assert contains_key("Platform 9 3/4!", ["9 3/4"])
    assert not contains_key("anything", [])


def test_small_rules_without_splits_keep_every_example_for_training(tmp_path: Path) -> None:
    few = tmp_path / "few.txt"
    few.write_text("\n".join(f"Question {i} about Zed?" for i in range(6)))
    assert all(e.split == "train" for e in load_rule_file(few).forget)
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"Question {i} about Zed?" for i in range(40)))
    splits = [e.split for e in load_rule_file(many).forget]
    assert "test" in splits and splits.count("train") > 20
