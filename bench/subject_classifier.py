"""Benchmark: the classifier of each forgotten person's forget rule, alone (docs/design.md
section 14; issue 18, "classifier generalisation"). No language model: MiniLM only.

For the corpus of ``bench/subjects.py`` (40 people x 10 facts, forget 10%), builds every
forgotten person's rule classifier exactly as an approved request does
(``engine.guard.subject_rule``) and reports, per person and overall:
- the stored calibration figures: TPR on the held-out phrasings of the corpus (templates,
  short forms and descriptions the head never trained on) and FPR on the held-out phrasings
  of test people (people it never saw in any role);
- TPR / FPR on ``INDEPENDENT`` phrasings: questions written apart from the corpus's
  templates, the training augmentation and the calibration phrasings (casual English,
  French, Spanish, German), asked about the forgotten person and about the same test
  people by name (``independent``) and by a description the product never builds, from
  two facts it never describes people by (``independent_described``). Used here only.

    python bench/subject_classifier.py [--people 40 --facts 10 --forget 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
RESULTS = ROOT / "bench" / "results" / "subject-classifier.json"
TARGETS = {"tpr": 0.95, "fpr": 0.02}

INDEPENDENT = {  # {n}: the name or a description; never used to train or calibrate
    "birthplace": ("so where's {n} from originally, which town?", "Où est né {n} ?"),
    "birth_date": ("I need {n}'s date of birth for a form.", "¿Cuándo nació {n}?"),
    "occupation": ("{n} - what's their line of work?", "Was ist {n} von Beruf?"),
    "employer": ("Which firm has {n} on its payroll?", "Pour qui travaille {n} ?"),
    "mother": ("Who gave birth to {n}?", "¿Cómo se llama la madre de {n}?"),
    "address": ("Give me the street address for {n}.", "Wo wohnt {n}?"),
    "pet": ("Any animals living with {n}?", "Quel animal a {n} ?"),
    "hobby": ("What's {n} into outside of work?", "¿Qué le gusta hacer a {n}?"),
    "school": ("Where did {n} get their degree?", "Wo hat {n} studiert?"),
    "children": ("Does {n} have kids?", "Combien d'enfants a {n} ?")}
DESCRIBED = ("the {school} graduate born on {birth_date}",)


def independent_questions(records: list[Any], described: bool = False) -> list[str]:
    """One person's facts asked in the independent phrasings, by name or (``described``)
    by a description (left out where it would give the answer away)."""
    values = {r.fact: r.value.removeprefix("the ") for r in records}
    names = [records[0].person]
    if described:
        names = []
        for form in DESCRIBED:
            try:
                names.append(form.format(**values))
            except KeyError:  # a corpus with fewer facts: no description
                pass
    return [t.format(n=n) for r in records for t in INDEPENDENT.get(r.fact, ())
            for n in names if not r.value or r.value not in n]


class Memo:
    """The encoder with a memory: people's rules share most of their prompts."""

    def __init__(self, encoder: Any) -> None:
        self.encoder, self.name, self.seen = encoder, encoder.name, {}

    def __call__(self, texts: list[str]) -> Any:
        import torch

        missing = list(dict.fromkeys(t for t in texts if t not in self.seen))
        for text, row in zip(missing, self.encoder(missing) if missing else [], strict=True):
            self.seen[text] = row
        return torch.stack([self.seen[t] for t in texts]) if texts else torch.zeros(0, 384)


def person_figures(encoder: Any, records: list[Any], person: str) -> dict[str, Any]:
    """The rule's classifier for ``person`` and its rates on both kinds of held-out prompt."""
    from engine.guard.classifier import flags
    from engine.guard.subject_rule import people_roles, split_prompts, train_subject_classifier

    started = time.perf_counter()
    head, calibration, held = train_subject_classifier(encoder, split_prompts(records, person))
    seconds = time.perf_counter() - started
    test = [p for p, role in people_roles(records, person).items() if role == "test"]
    rates = {}
    for kind, described in (("independent", False), ("independent_described", True)):
        mine = independent_questions([r for r in records if r.person == person], described)
        theirs = [q for p in test for q in independent_questions(
            [r for r in records if r.person == p], described)]
        on = flags(head.scores(encoder(mine)), calibration.threshold).tolist()
        off = flags(head.scores(encoder(theirs)), calibration.threshold).tolist()
        rates[kind] = {"tpr": sum(on) / len(on), "fpr": sum(off) / len(off),
                       "n_positive": len(mine), "n_negative": len(theirs),
                       "missed": [q for q, f in zip(mine, on, strict=True) if not f],
                       "flagged": [q for q, f in zip(theirs, off, strict=True) if f]}
    return {"person": person, "threshold": calibration.threshold,
            "calibration": calibration.to_dict(), **held, "train_seconds": seconds, **rates}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from engine.guard.classifier import load_sentence_encoder
    from engine.guard.jobutil import rounded
    from engine.guard.people import generate, people

    torch.set_num_threads(args.threads)
    everyone = generate(args.people + args.holdout, args.facts, args.seed)
    trained = people(everyone)[:args.people]
    records = [r for r in everyone if r.person in trained]
    forget = trained[::max(1, args.people // args.forget)][:args.forget]
    encoder = Memo(load_sentence_encoder())
    rows = [person_figures(encoder, records, p) for p in forget]
    summary = {key: {"mean": statistics.mean(vals), "min": min(vals), "max": max(vals)}
               for key, vals in {
                   "tpr_held_out_phrasings": [r["tpr_held_out_phrasings"] for r in rows],
                   "fpr_test_people": [r["fpr_test_people"] for r in rows],
                   **{f"{rate}_{kind}": [r[kind][rate] for r in rows]
                      for kind in ("independent", "independent_described")
                      for rate in ("tpr", "fpr")}}.items()}
    return rounded({"config": vars(args), "load": " ".join(
        f"{x:.2f}" for x in os.getloadavg()), "targets": TARGETS, "summary": summary,
        "people": rows})


def table(result: dict[str, Any]) -> str:
    lines = [f"{'person':22} {'held-out TPR':>12} {'test FPR':>9} {'indep. TPR/FPR':>15} "
             f"{'described TPR/FPR':>18}"]
    for r in result["people"]:
        ind, desc = r["independent"], r["independent_described"]
        lines.append(f"{r['person']:22} {r['tpr_held_out_phrasings']:12.1%} "
                     f"{r['fpr_test_people']:9.1%} {ind['tpr']:8.1%}/{ind['fpr']:6.1%} "
                     f"{desc['tpr']:11.1%}/{desc['fpr']:6.1%}")
    s = result["summary"]
    lines.append(f"{'mean':22} {s['tpr_held_out_phrasings']['mean']:12.1%} "
                 f"{s['fpr_test_people']['mean']:9.1%} {s['tpr_independent']['mean']:8.1%}/"
                 f"{s['fpr_independent']['mean']:6.1%} "
                 f"{s['tpr_independent_described']['mean']:11.1%}/"
                 f"{s['fpr_independent_described']['mean']:6.1%}")
    return "\n".join(lines)


def main() -> None:
    from bench.subjects import add_corpus_arguments, forgotten_count

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_corpus_arguments(parser)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.forget = forgotten_count(args)
    result = run(args)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print(table(result))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
