"""Benchmark: forget people in a fine-tuned language model, measured as TOFU and MUSE do
(docs/design.md section 14).

Generates a corpus of fictitious people, fine-tunes the offline SmolLM2 on it (`lm
finetune`) and a retain model on it without the forgotten people (~10%), files and approves
one erasure request per forgotten person (their forget rule is built and enabled), then
reports for the fine-tuned, guarded and retain models: TOFU forget quality and model
utility, LOSS / zlib / Min-K% / Min-K%++ AUC and PrivLeak against never-trained people,
answer quality of the forgotten people's questions, a sweep of ECO corruptions, the
classifier's TPR / FPR on held-out phrasings and the wall time of every step. JSON to
bench/results/subjects.json.

    python bench/subjects.py [--people 40 --facts 10 --holdout 4 --epochs 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "subjects.json"
SWEEP = [("gaussian_first_n", 0.5), ("gaussian_first_n", 1.0), ("gaussian_first_n", 2.0),
         ("zero_out_top_k", None), ("flip_sign_top_k", None), ("shuffle", None)]


class Clock:
    """Wall time of every step, printed as it ends."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def __call__(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        self.times[name] = round(time.perf_counter() - started, 2)
        print(f"[{self.times[name]:8.1f} s] {name}", flush=True)
        return result


def drain(job: Any) -> Any:
    from engine.jobs import run_job

    return run_job(job, lambda p: None)


def setup(args: argparse.Namespace, clock: Clock, folder: Path) -> dict[str, Any]:
    """Corpus, fine-tuned and retain models, one approved request per forgotten person."""
    from engine.guard import subject_jobs as jobs
    from engine.guard.people import generate, people, write_corpus

    everyone = generate(args.people + args.holdout, args.facts, args.seed)
    names = people(everyone)
    trained, holdout = names[:args.people], names[args.people:]
    forget = trained[::max(1, args.people // args.forget)][:args.forget]
    corpus = write_corpus([r for r in everyone if r.person in trained], folder / "people.jsonl")
    ws = folder / "ws"
    options = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
               "device": "cpu", "base": args.base}
    ft = clock("finetune (all people)", drain, jobs.finetune_model_job(
        ws, corpus=str(corpus), name="people", operator="bench", **options))
    retain = clock("finetune retain (without forgotten)", drain, jobs.finetune_model_job(
        ws, corpus=str(corpus), name="people-retain", operator="bench", exclude=forget,
        **options))
    rules = clock("requests: file, approve, build and enable rules", subject_requests, ws,
                  forget)
    return {"everyone": everyone, "forget": forget, "holdout": holdout, "ws": ws, "ft": ft,
            "retain": retain, "rules": rules}


def subject_requests(ws: Path, forget: list[str]) -> list[dict[str, Any]]:
    from engine.guard import subject_jobs as jobs
    from storage import requests as reqs
    from storage.settings import set_setting
    from storage.subject_key import subject_key
    from storage.workspace import Workspace
    from tests import approvals

    workspace = Workspace.open(ws)
    with workspace.sessions.begin() as session:
        set_setting(session, "four_eyes", False, "bench")
    ids = []
    for person in forget:
        with workspace.sessions.begin() as session:
            request = reqs.create_request(session, model_name="people", subject=person,
                                          legal_basis="GDPR Art. 17(1)", operator="bench",
                                          subject_key=subject_key(workspace.keys_dir))
            approvals.approve(session, request.id, "dpo")
            ids.append(request.id)
    workspace.close()
    return [drain(jobs.forget_subject_job(ws, request=i, operator="dpo")) for i in ids]


def guard_of(ws: Path, rules: list[dict[str, Any]], corruption: str | None = None,
             sigma_std: float | None = None, std: float = 1.0) -> Any:
    """The stored rules as a Guard (optionally with another corruption, for the sweep)."""
    from engine.guard.classifier import load_sentence_encoder
    from engine.guard.guard import Guard, GuardRule
    from storage.workspace import Workspace

    workspace = Workspace.open(ws)
    out = []
    for r in rules:
        rule = GuardRule.from_row(r, workspace.artifacts.get(r["classifier_artifact"]))
        if corruption is not None:
            rule.corruption = corruption
            rule.corruption_params = {"seed": 0, "n": None} if corruption.startswith(
                "gaussian") else ({"k": None} if "top_k" in corruption else
                                  ({"seed": 0} if corruption == "shuffle" else {}))
            rule.sigma = (sigma_std or 0.0) * std
        out.append(rule)
    workspace.close()
    return Guard(out, load_sentence_encoder())


def corruption_for(guard: Any) -> Any:
    """question -> the flagging rule's corruption (None when the guard lets it through)."""
    cache: dict[str, Any] = {}

    def pick(question: str) -> Any:
        if question not in cache:
            verdict = guard.classify(question)
            cache[question] = verdict.rule.corruption_fn() if verdict.flagged else None
        return cache[question]
    return pick


def guarded_answers(lm: Any, guard: Any, questions: list[str], plain: list[str],
                    max_new_tokens: int) -> list[str]:
    """The guarded model's answers: a flagged prompt is answered with its corruption;
    an unflagged one is the unguarded model's (no hook: the same greedy text)."""
    from engine.guard.hook import corrupted_answer

    pick = corruption_for(guard)
    return [corrupted_answer(lm, q, pick(q), max_new_tokens) if pick(q) else p
            for q, p in zip(questions, plain, strict=True)]


def model_figures(lm: Any, forget: list, retain_sample: list, holdout: list,
                  retain_answers: list[str], pick: Any = None) -> dict[str, Any]:
    from engine.guard import tofu

    return {"truth_ratios_forget": tofu.truth_ratios(lm, forget, pick),
            "utility": tofu.model_utility(lm, retain_sample, retain_answers, pick),
            "mia": tofu.membership(lm, forget, holdout, pick)}


def measure(args: argparse.Namespace, clock: Clock, state: dict[str, Any]) -> dict[str, Any]:
    from engine.guard.lm import load_language_model
    from engine.guard.scoring import batch_answers

    everyone, gone = state["everyone"], set(state["forget"])
    forget = [r for r in everyone if r.person in gone]
    holdout = [r for r in everyone if r.person in set(state["holdout"])]
    others = [r for r in everyone if r.person not in gone and r not in holdout]
    sample = others[::max(1, len(others) // args.utility_sample)][:args.utility_sample]
    ft = clock("load fine-tuned", load_language_model, state["ft"]["folder"], "cpu")
    retain = clock("load retain", load_language_model, state["retain"]["folder"], "cpu")
    guard = clock("load guard", guard_of, state["ws"], state["rules"])
    pick = corruption_for(guard)
    n = args.max_new_tokens
    qs = [r.question for r in sample]
    ft_ans = clock("answers fine-tuned (utility sample)", batch_answers, ft, qs, n)
    rt_ans = clock("answers retain (utility sample)", batch_answers, retain, qs, n)
    g_ans = clock("answers guarded (utility sample)", guarded_answers, ft, guard, qs, ft_ans, n)
    figures = {
        "fine-tuned": clock("figures fine-tuned", model_figures, ft, forget, sample, holdout,
                            ft_ans),
        "guarded": clock("figures guarded", model_figures, ft, forget, sample, holdout, g_ans,
                         pick),
        "retain": clock("figures retain", model_figures, retain, forget, sample, holdout,
                        rt_ans)}
    quality = clock("answer quality (forgotten questions)", answer_quality, ft, retain, guard,
                    forget, n)
    sweep = clock("corruption sweep", corruption_sweep, ft, state, forget,
                  figures["retain"]["truth_ratios_forget"], args)
    return summarise(figures, quality, sweep, state, guard, forget)


def answer_quality(ft: Any, retain: Any, guard: Any, forget: list, n: int) -> dict[str, Any]:
    """Repetition and the fine-tuned model's perplexity of each model's answers to the
    forgotten people's questions."""
    from engine.guard import tofu
    from engine.guard.scoring import batch_answers

    qs = [r.question for r in forget]
    answers = {"fine-tuned": batch_answers(ft, qs, n), "retain": batch_answers(retain, qs, n)}
    answers["guarded"] = guarded_answers(ft, guard, qs, answers["fine-tuned"], n)
    out = {}
    for name, texts in answers.items():
        ppl = tofu.perplexity(ft, [(q, a or ".") for q, a in zip(qs, texts, strict=True)])
        out[name] = {"repetition": sum(map(tofu.repetition, texts)) / len(texts),
                     "perplexity_under_finetuned": sorted(ppl)[len(ppl) // 2],
                     "examples": [{"q": q, "a": a}
                                  for q, a in list(zip(qs, texts, strict=True))[:4]]}
    return out


def corruption_sweep(ft: Any, state: dict[str, Any], forget: list, retain_ratios: list,
                     args: argparse.Namespace) -> list[dict[str, Any]]:
    """Forget quality and answer repetition of each candidate corruption."""
    from engine.guard import tofu

    std = ft.embedding_std
    rows = []
    for family, strength in SWEEP:
        guard = guard_of(state["ws"], state["rules"], family, strength, std)
        pick = corruption_for(guard)
        ratios = tofu.truth_ratios(ft, forget, pick)
        probe = forget[:args.sweep_answers]
        texts = guarded_answers(ft, guard, [r.question for r in probe], [""] * len(probe),
                                args.max_new_tokens)
        rows.append({"corruption": family, "sigma_in_std": strength,
                     "forget_quality": tofu.forget_quality(ratios, retain_ratios),
                     "repetition": sum(map(tofu.repetition, texts)) / len(texts),
                     "example": texts[0]})
        print(f"    sweep {family} {strength}: {rows[-1]}", flush=True)
    return rows


def summarise(figures: dict, quality: dict, sweep: list, state: dict, guard: Any,
              forget: list) -> dict[str, Any]:
    from engine.guard import tofu
    from engine.guard.subject_rule import held_questions

    retain_tr = figures["retain"]["truth_ratios_forget"]
    base_mu = figures["fine-tuned"]["utility"]["model_utility"]
    table = {}
    for name, f in figures.items():
        table[name] = {
            "forget_quality": tofu.forget_quality(f["truth_ratios_forget"], retain_tr),
            "truth_ratio_forget_mean": sum(f["truth_ratios_forget"]) / len(forget),
            **f["utility"],
            "utility_vs_finetuned": f["utility"]["model_utility"] / base_mu if base_mu else None,
            "mia_auc": f["mia"]["auc"],
            "privleak": {a: tofu.privleak(f["mia"]["auc"][a], figures["retain"]["mia"]["auc"][a])
                         for a in tofu.ATTACKS},
            "answer_quality": quality[name],
            "truth_ratio_histogram": tofu.histogram(f["truth_ratios_forget"]),
            "roc_min_k_pp": f["mia"]["roc_min_k_pp"]}
    held = [q for r in forget for q in held_questions(r)]
    flagged = sum(guard.classify(q).flagged for q in held)
    return {"models": table, "sweep": sweep,
            "classifier": {"rules": [r["calibration"] for r in state["rules"]],
                           "tpr_held_out_phrasings_guard": flagged / len(held),
                           "n_held_out": len(held)},
            "finetune": {"all": state["ft"], "retain": state["retain"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--facts", type=int, default=10)
    parser.add_argument("--holdout", type=int, default=4)
    parser.add_argument("--forget", type=int, default=None, help="default: 10%% of people")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--utility-sample", type=int, default=40)
    parser.add_argument("--sweep-answers", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base", help="base model spec (default: the offline SmolLM2)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    args.forget = args.forget or max(1, round(args.people / 10))
    import torch

    torch.set_num_threads(args.threads)
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="bench-subjects-") as tmp:
        state = setup(args, clock, Path(tmp))
        result = measure(args, clock, state)
    result.update({"config": vars(args), "wall_seconds": clock.times,
                   "forgotten": len(state["forget"]), "holdout": len(state["holdout"])})
    Path(args.out).write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    print(json.dumps({k: {m: v for m, v in t.items() if m in (
        "forget_quality", "model_utility", "utility_vs_finetuned", "privleak")}
        for k, t in result["models"].items()}, indent=1))


if __name__ == "__main__":
    main()
