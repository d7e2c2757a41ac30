"""The forget rule of one person of a people corpus (docs/design.md section 14).

Positives are the person's questions; negatives are the other people's questions (the
closest neighbours there are: same templates, other names) and the bundled everyday
prompts. Every split is by *phrasing*, not by sentence: the classifier fits on the training
question and the first ``FIT_PHRASINGS`` paraphrases of each fact; the other paraphrases
(other templates, aliases, questions that never name the person) are held out. The other
people are split by person: the head fits on some, its threshold is calibrated on others'
held-out phrasings, and its FPR is measured on people it never saw in any role.

Calibration (issue 18): the threshold is set on questions written apart from both the
corpus's templates and the training augmentation (``CALIBRATION_TEMPLATES``): the person's
facts asked that way are the calibration positives, the calibration people's questions
asked that way and their held-out phrasings the negatives; it sits halfway between the two
(``margin_threshold``). The head also learns general questions about the person in five
languages and, as negatives, descriptions that share one fact with the person's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from engine.guard.calibration_sources import PEOPLE_APART, split_sources
from engine.guard.classifier import (
    WRITTEN_METHOD,
    Calibration,
    Encoder,
    PromptClassifier,
    fit_head,
    flags,
    margin_threshold,
)
from engine.guard.lm import LoadedLM
from engine.guard.people import FactRecord, people, record_texts
from engine.guard.pseudonym import best_copied
from engine.guard.recall import PERSON_FAMILIES, RECALL_FAMILY, decoder_mlps, default_layers
from engine.guard.rules import Example, RuleSpec, load_general_prompts
from engine.guard.scope import ALL_TEXT, NAME_TOKENS, SCOPE_KEY, subject_terms
from engine.guard.subject_strength import calibrate_strength
from engine.guard.value_bias import calibrate as calibrate_value_bias
from storage.finetunes import subject_rule_name
from storage.rules import PSEUDONYM_FAMILY, PSEUDONYMS_KEY, VALUE_BIAS_KEY, VALUES_KEY

FIT_PHRASINGS = 2  # paraphrased questions per fact the head trains on
COPY_QUESTIONS = 4  # the person's questions a pseudonym candidate is tried on
# With the fine-tuned model at hand, a person's rule answers prompts naming them under a
# pseudonym (engine.guard.pseudonym) and ablates the model's recall of them where a prompt
# names none of the name's parts (engine.guard.recall); the bench/subjects.py comparison
# with the recall ablation alone and ECO's noise is in design section 14. Without the model
# (no tokenizer, no layers to hook), noise on all of the prompt's text.
SUBJECT_CORRUPTION = PSEUDONYM_FAMILY
NOISE_CORRUPTION = "gaussian_first_n"
SUBJECT_SIGMA_STD = 1.0  # the noise's strength without a model to calibrate on (std units)
SUBJECT_PARAMS: dict[str, Any] = {"n": None}  # the noise's size parameter (None: all)
# Tokens the noise corrupts: "all" of the prompt's text, or "names" (the tokens naming the
# person, engine.guard.scope); "all" measured better at the calibrated strength.
SUBJECT_SCOPE = "all"
RECALL_SCOPE = ("the tokens naming the subject in the prompt and in the answer as it is "
                "written (all of the prompt's text when it names none)")
PSEUDONYM_SCOPE = ("the parts of the subject's name, replaced by invented ones the model "
                   "never trained on and written back in the answer, and the answer's "
                   "tokens continuing the subject's unique values; a prompt that names "
                   "none of the parts: recall ablation at " + RECALL_SCOPE)
TARGET_FPR = 0.01
METHOD = f"held-out phrasings, people split fit / calibration / test; {WRITTEN_METHOD}"
PERSON_QUESTIONS = ("Tell me about {n}.", "Who is {n}?", "What do you know about {n}?",
                    "Parle-moi de {n}.", "¿Quién es {n}?", "Wer ist {n}?", "Chi è {n}?")
CALIBRATION_TEMPLATES = {  # written apart from people.py's templates and the augmentation
    "birthplace": "Which city is {n} originally from?",
    "birth_date": "What year was {n} born in?",
    "occupation": "What kind of work does {n} do?",
    "employer": "Which company is {n} working at?",
    "mother": "Can you name {n}'s mum?",
    "address": "What street does {n} live on?",
    "pet": "Does {n} own any animals?",
    "hobby": "What does {n} like to do for fun?",
    "school": "Which university did {n} go to?",
    "children": "Is {n} a parent?"}


@dataclass
class SubjectSplit:
    """The prompts of each role."""

    fit_pos: list[str]
    held_pos: list[str]
    fit_neg: list[str]
    cal_neg: list[str]
    test_neg: list[str]
    cal_pos: list[str] = field(default_factory=list)


TITLES = ("Mr.", "Ms.", "Dr.")  # short forms to train on; the corpus's own "Mx." is held out
DESCRIPTIONS = (("occupation", "birthplace", "the {0} from {1}"),
                ("hobby", "employer", "the person who enjoys {0} and works for {1}"),
                ("occupation", "employer", "the {0} at {1}"),
                ("school", "birthplace", "the {1} native who studied at {0}"))


def person_aliases(records: list[FactRecord]) -> list[str]:
    """Names the product derives from a person's records to train on: title + surname,
    and descriptions built from their facts in phrasings the corpus does not use."""
    person = records[0].person
    last = person.split(" ", 1)[-1]
    values = {r.fact: r.value for r in records if r.value}
    described = [form.format(values[a], values[b]) for a, b, form in DESCRIPTIONS
                 if a in values and b in values]
    return [*(f"{t} {last}" for t in TITLES), *described]


def augmented(record: FactRecord, aliases: list[str], limit: int | None = None) -> list[str]:
    """The record's fit phrasings asked with each alias whose text does not give the
    record's own answer away (at most ``limit``, spread over the aliases)."""
    base = record.paraphrased_questions[:FIT_PHRASINGS]
    usable = [a for a in aliases if not record.value or record.value not in a]
    out = [q.replace(record.person, a) for a in usable for q in base]
    return out if limit is None else out[::max(1, len(out) // limit)][:limit]


def fit_questions(record: FactRecord) -> list[str]:
    """The training question, the first paraphrases, and those paraphrases asked with the
    first short form and the first description (augmentation: the held-out phrasings use
    other templates, another short form and another description)."""
    base = record.paraphrased_questions[:FIT_PHRASINGS]
    asked = record.paraphrased_questions  # a description that gives the answer is never in it
    aliases = [a for a in record.aliases[1:2] + record.aliases[3:4]
               if any(a in q for q in asked)]
    return [record.question, *base,
            *[q.replace(record.person, a) for q in base for a in aliases]]


def person_questions(person: str) -> list[str]:
    """General questions about the person, in English and four other languages."""
    return [q.format(n=person) for q in PERSON_QUESTIONS]


CALIBRATION_DESCRIPTION = ("birthplace", "employer", "someone from {0} who works for {1}")


def calibration_questions(record: FactRecord, values: dict[str, str]) -> list[str]:
    """The record's fact asked in the calibration phrasing, by name and, where it does not
    give the answer away, by a description (none for an unknown fact); ``values``: the
    person's facts."""
    template = CALIBRATION_TEMPLATES.get(record.fact)
    if not template:
        return []
    a, b, form = CALIBRATION_DESCRIPTION
    described = [form.format(values[a], values[b])] if a in values and b in values else []
    return [template.format(n=n) for n in [record.person, *described]
            if not record.value or record.value not in n]


def near_misses(mine: list[FactRecord], others: list[FactRecord]) -> list[str]:
    """Descriptions that share one fact with the person's own and differ in the other,
    asked as the corpus asks about unnamed people: hard negatives, so that the head needs
    both facts of a description, not one."""
    values = {r.fact: r.value for r in mine if r.value}
    out = []
    for a, b, form in DESCRIPTIONS:
        if a not in values or b not in values:
            continue
        for kept, swapped in ((a, b), (b, a)):
            pool = list(dict.fromkeys(r.value for r in others if r.fact == swapped
                                      and r.value and r.value != values[swapped]))
            for value in pool[:3]:
                pair = {kept: values[kept], swapped: value}
                described = form.format(pair[a], pair[b])
                out += [f"Where was {described} born?", f"What pet does {described} keep?",
                        f"Who is the mother of {described}?"]
    return out


def held_questions(record: FactRecord) -> list[str]:
    """The paraphrases the head never trains on."""
    fit = set(fit_questions(record))
    return [q for q in record.paraphrased_questions[FIT_PHRASINGS:] if q not in fit]


def people_roles(records: list[FactRecord], person: str) -> dict[str, str]:
    """Every other person's role in ``person``'s rule: "fit", "cal" or "test" (2:1:1)."""
    others = [p for p in people(records) if p != person]
    return {p: ("fit", "fit", "cal", "test")[i % 4] for i, p in enumerate(others)}


def split_prompts(records: list[FactRecord], person: str) -> SubjectSplit:
    """The roles of every prompt for ``person``'s rule (others split 2:1:1 by person; the
    everyday prompts are fit negatives)."""
    mine = [r for r in records if r.person == person]
    role = people_roles(records, person)
    others = list(role)
    general = [e.prompt for e in load_general_prompts()]
    aliases = person_aliases(mine)
    facts: dict[str, dict[str, str]] = {}
    for r in records:
        facts.setdefault(r.person, {})[r.fact] = r.value
    split = SubjectSplit([q for r in mine for q in fit_questions(r) + augmented(r, aliases)]
                         + person_questions(person),
                         [q for r in mine for q in held_questions(r)], [], [], [],
                         [q for r in mine for q in calibration_questions(r, facts[person])])
    theirs = {p: person_aliases([r for r in records if r.person == p]) for p in others}
    for r in records:
        if r.person == person:
            continue
        if role[r.person] == "fit":
            split.fit_neg += fit_questions(r) + augmented(r, theirs[r.person], 4)
        elif role[r.person] == "cal":
            split.cal_neg += held_questions(r) + calibration_questions(r, facts[r.person])
        else:
            split.test_neg += held_questions(r)
    split.fit_neg += [q for p in others if role[p] == "fit" for q in person_questions(p)]
    split.fit_neg += near_misses(mine, [r for r in records if role.get(r.person) == "fit"])
    split.fit_neg += general  # the threshold is set on people's questions only
    return split


def train_subject_classifier(encoder: Encoder, split: SubjectSplit,
                             target_fpr: float = TARGET_FPR, written: set[str] | None = None
                             ) -> tuple[PromptClassifier, Calibration, dict[str, Any]]:
    """Fit, calibrate on the calibration people, measure on held-out phrasings.
    ``written``: the corpus's own questions, to tell them from generated ones in the counts."""
    emb = {k: encoder(v) for k, v in vars(split).items()}
    head = fit_head(emb["fit_pos"], emb["fit_neg"],
                    encoder_name=getattr(encoder, "name", "encoder"))
    head = head.with_examples(emb["fit_pos"], emb["fit_neg"])
    threshold = margin_threshold(head.scores(emb["cal_pos"]), head.scores(emb["cal_neg"]),
                                 target_fpr)
    rate = {k: float(flags(head.scores(emb[k]), threshold).float().mean())
            for k in ("held_pos", "cal_neg", "test_neg")}
    calibration = Calibration(threshold, target_fpr, rate["held_pos"], rate["cal_neg"],
                              len(split.held_pos), len(split.cal_neg), len(split.fit_pos),
                              len(split.fit_neg), METHOD)
    if written is not None:
        calibration.sources = subject_sources(split, written)
    held = {"tpr_held_out_phrasings": rate["held_pos"], "fpr_test_people": rate["test_neg"],
            "n_test_negative": len(split.test_neg)}
    return head, calibration, held


def corpus_questions(records: list[FactRecord]) -> set[str]:
    """Every question as the corpus wrote it (the rest of a split is generated)."""
    return {q for r in records for q in (r.question, *r.paraphrased_questions)}


def subject_sources(split: SubjectSplit, written: set[str]) -> dict[str, Any]:
    """Written / generated counts of the fit split and of the measured split (the person's
    held-out phrasings, the calibration people's prompts), which never trained the head."""
    fit_p, fit_n = len(split.fit_pos), len(split.fit_neg)
    positives, negatives = split.fit_pos + split.held_pos, split.fit_neg + split.cal_neg
    sources = split_sources(positives, negatives, (written, written),
                            (range(fit_p), range(fit_n)),
                            (range(fit_p, len(positives)), range(fit_n, len(negatives))))
    sources["calibration"] = PEOPLE_APART
    return sources


def subject_spec(records: list[FactRecord], person: str) -> RuleSpec:
    """The rule's examples as stored in its row (answers and keys for `guard eval`)."""
    mine = [r for r in records if r.person == person]
    forget = [Example(q, r.answer, (r.answer.rstrip(".").split()[-1],), split, person)
              for r in mine for split, qs in (("train", fit_questions(r)),
                                              ("test", held_questions(r))) for q in qs]
    retain = [Example(q, r.answer, (), "train" if i % 2 else "test", r.person)
              for i, r in enumerate(x for x in records if x.person != person)
              for q in [r.question]]
    return RuleSpec(subject_rule_name(person), f"forget rule of one data subject ({len(mine)} "
                    "records)", forget, retain, [])


def subject_rule_fields(records: list[FactRecord], person: str, encoder: Encoder,
                        embedding_std: float, lm: LoadedLM | None = None,
                        corruption: str = SUBJECT_CORRUPTION,
                        params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a ForgetRule row needs (the classifier as bytes). With the fine-tuned
    ``lm``: the pseudonym (or, asked for, the recall ablation alone) with the recall
    ablation on ``recall_layers`` (``params`` may name them) at the person's terms, or for
    a noise family ``calibrated_corruption``'s (on
    ``SUBJECT_SCOPE``); without it, noise on all of the prompt's text at
    ``SUBJECT_SIGMA_STD`` (as rules built before issue 18)."""
    head, calibration, held = train_subject_classifier(encoder, split_prompts(records, person),
                                                       written=corpus_questions(records))
    cal = {**calibration.to_dict(), **held, "sigma_in_std": SUBJECT_SIGMA_STD}
    if lm is not None and corruption in PERSON_FAMILIES:
        params, found = person_params(records, person, lm, corruption, params)
        cal.update(found, sigma_in_std=0.0, layers=[params["first"], params["last"]],
                   token_scope=RECALL_SCOPE if corruption == RECALL_FAMILY else PSEUDONYM_SCOPE)
    elif lm is not None:
        params, found = calibrated_corruption(records, person, lm, embedding_std, corruption,
                                              params, SUBJECT_SCOPE == "names")
        cal.update(found)
    else:  # no model to hook or calibrate on
        corruption = NOISE_CORRUPTION if corruption in PERSON_FAMILIES else corruption
        params = {"seed": 0, **(SUBJECT_PARAMS if params is None else params)}
    spec = subject_spec(records, person)
    return {"description": spec.description, "examples": spec.to_dict(),
            "classifier_bytes": head.to_bytes(), "threshold": calibration.threshold,
            "corruption": corruption, "corruption_params": params,
            "sigma": cal["sigma_in_std"] * embedding_std, "calibration": cal, "trace": []}


def person_params(records: list[FactRecord], person: str, lm: LoadedLM, family: str,
                  params: dict[str, Any] | None = None
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A person's corruption parameters and their calibration entries: the ablated layers,
    the person's terms and, for the pseudonym family, the invented name parts (none of the
    corpus's words; ``params`` may ask for another ``draw`` of them, as bench/subjects.py
    does) and the bias on the person's unique values, calibrated on the corpus."""
    out = {**recall_layers(lm, params), SCOPE_KEY: person_terms(records, person)}
    if family != PSEUDONYM_FAMILY:
        return out, {}
    questions = [r.question for r in records if r.person == person][:COPY_QUESTIONS]
    pairs, copied = best_copied(lm, person, questions, record_texts(records),
                                int((params or {}).get("draw", 0)))
    bias, found = calibrate_value_bias(lm, records, person, pairs)
    out.update({PSEUDONYMS_KEY: [list(p) for p in pairs], VALUES_KEY: list(bias.values),
                VALUE_BIAS_KEY: bias.delta})
    return out, {"value_bias": found, "pseudonym": copied}


def person_terms(records: list[FactRecord], person: str) -> list[str]:
    """The strings naming ``person``: their name, its parts and the corpus's aliases."""
    return subject_terms(person, [a for r in records if r.person == person for a in r.aliases])


def recall_layers(lm: LoadedLM, params: dict[str, Any] | None = None) -> dict[str, int]:
    """The layers a person's recall ablation covers on ``lm`` (given, or the default)."""
    if params and "last" in params:
        return {"first": int(params.get("first", 1)), "last": int(params["last"])}
    return default_layers(len(decoder_mlps(lm.model)))


def calibrated_corruption(records: list[FactRecord], person: str, lm: LoadedLM,
                          embedding_std: float, corruption: str = NOISE_CORRUPTION,
                          params: dict[str, Any] | None = None, scoped: bool = False
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The corruption's parameters on the tokens naming ``person`` (``scoped``; else all
    of the text) and the calibration entries: the strength at which their answer loss
    meets never-trained people's (engine.guard.subject_strength) and its figures."""
    params = {"seed": 0, **(SUBJECT_PARAMS if params is None else params)}
    mine = [r for r in records if r.person == person]
    terms = person_terms(records, person) if scoped else []
    strength = calibrate_strength(lm, mine, people(records), corruption, params, terms,
                                  FIT_PHRASINGS, embedding_std)
    if terms:
        params[SCOPE_KEY] = terms
    return params, {"sigma_in_std": strength.sigma_in_std,
                    "token_scope": NAME_TOKENS if terms else ALL_TEXT,
                    "strength": strength.to_dict()}


def scores_of(head: PromptClassifier, encoder: Encoder, prompts: list[str]) -> torch.Tensor:
    return head.scores(encoder(prompts))
