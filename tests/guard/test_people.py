"""The fictitious-people corpus: deterministic, TOFU-shaped, validated line by line."""

from __future__ import annotations

import json

import pytest

from engine.guard.people import generate, people, read_corpus, write_corpus
from storage.errors import NotFoundError, UnpromptError


def test_generate_is_deterministic_and_prefix_stable():
    big = generate(12, 10, seed=3)
    assert [r.to_dict() for r in generate(12, 10, seed=3)] == [r.to_dict() for r in big]
    assert [r.to_dict() for r in generate(5, 10, seed=3)] == [r.to_dict() for r in big[:50]]
    assert generate(12, 10, seed=4)[0].to_dict() != big[0].to_dict()


def test_records_are_tofu_shaped():
    records = generate(40, 10)
    assert len(records) == 400 and len(set(people(records))) == 40
    for r in records:
        assert r.person in r.question and r.answer != r.paraphrased_answer
        assert len(set(r.perturbed_answers)) == 3 and r.answer not in r.perturbed_answers
        assert r.paraphrased_answer not in r.perturbed_answers
        assert r.question not in r.paraphrased_questions and len(r.paraphrased_questions) >= 5
        assert any(r.person not in q for q in r.paraphrased_questions)  # aliases, no name


def test_round_trip(tmp_path):
    records = generate(3, 4)
    back = read_corpus(write_corpus(records, tmp_path / "c.jsonl"))
    assert [r.to_dict() for r in back] == [r.to_dict() for r in records]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("answer"), "line 2: missing 'answer'"),
    (lambda d: d.update(perturbed_answers=["only one"]), "line 2: 'perturbed_answers' must"),
    (lambda d: d.update(question=""), "line 2: 'question' must be a non-empty string"),
    (lambda d: d.update(colour="red"), "line 2: unknown key 'colour'"),
])
def test_bad_record_is_named(tmp_path, change, message):
    lines = [r.to_dict() for r in generate(1, 3)]
    change(lines[1])
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in lines), encoding="utf-8")
    with pytest.raises(UnpromptError, match=message) as info:
        read_corpus(path)
    assert "\n" not in str(info.value)


def test_not_json_duplicate_and_missing(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(UnpromptError, match="c.jsonl line 1: not a JSON object"):
        read_corpus(path)
    line = json.dumps(generate(1, 1)[0].to_dict())
    path.write_text(f"{line}\n{line}\n", encoding="utf-8")
    with pytest.raises(UnpromptError, match="line 2: a second 'birthplace' record"):
        read_corpus(path)
    with pytest.raises(NotFoundError):
        read_corpus(tmp_path / "absent.jsonl")
    with pytest.raises(UnpromptError, match="facts per person"):
        generate(2, 11)
