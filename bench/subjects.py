"""Benchmark: forget people in a fine-tuned language model, measured as TOFU and MUSE do
(docs/design.md section 14).

Generates a corpus of fictitious people, fine-tunes the offline SmolLM2 on it (`lm
finetune`) and a retain model on it without the forgotten people (~10%), files and approves
one erasure request per forgotten person (their forget rule is built and enabled), then
reports for the fine-tuned, guarded and retain models: TOFU forget quality and model
utility, LOSS / zlib / Min-K% / Min-K%++ AUC and PrivLeak against never-trained people,
answer quality of the forgotten people's questions, a sweep of ECO corruptions, the
classifier's TPR / FPR on held-out phrasings and the wall time of every step. JSON to
bench/results/subjects.json. Every figure comes from the product's audit code
(engine/guard/subject_audit.py) on held-out phrasings.

    python bench/subjects.py [--people 40 --facts 10 --holdout 4 --epochs 4]
    # on a slow machine, in steps that reuse the models kept in --workdir:
    python bench/subjects.py --workdir W --sweep-only
    python bench/subjects.py --workdir W --models fine-tuned,retain
    python bench/subjects.py --workdir W --models guarded --corruption best
    python bench/subjects.py --workdir W --sweep-only --sweep-rows 7,8  # some candidates

The guarded model's corruption is the product's (``engine.guard.subject_rule``: the recall
ablation of engine/guard/recall.py on the layers ``default_layers`` picks); the sweep also
tries ECO's noise (fixed and calibrated strengths, all of the text or the name tokens), other
families and the recall ablation at other depths. Every audit also repeats the attacks on the
questions the model was trained on and counts the answers that state the true fact.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "subjects.json"


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


def drain(job: Any, training: Any = None) -> Any:
    """Run a job, printing every tenth of its progress; ``training`` (an Event) is set at
    its first training step."""
    from engine.jobs import run_job

    seen = [0.0]

    def report(progress: Any) -> None:
        if training is not None and "step" in progress.message:
            training.set()
        if progress.fraction is not None and progress.fraction >= seen[0] + 0.1:
            seen[0] = progress.fraction
            print(f"    {progress.fraction:4.0%} {progress.message}", flush=True)
    return run_job(job, report)


def setup(args: argparse.Namespace, clock: Clock, folder: Path) -> dict[str, Any]:
    """Corpus, fine-tuned and retain models, one approved request per forgotten person;
    read back from ``folder`` when an earlier run with the same sizes left them there."""
    from engine.guard.people import generate, people

    everyone = generate(args.people + args.holdout, args.facts, args.seed)
    names = people(everyone)
    trained, holdout = names[:args.people], names[args.people:]
    forget = trained[::max(1, args.people // args.forget)][:args.forget]
    saved = folder / "state.json"
    if saved.is_file():
        state = json.loads(saved.read_text(encoding="utf-8"))
        if state["sizes"] == sizes(args):
            print(f"reusing the models and rules of {folder}", flush=True)
            clock.times.update(state["times"])
            return {**state, "everyone": everyone, "ws": Path(state["ws"])}
    state = trained_state(args, clock, folder, everyone, trained, forget)
    state.update(holdout=holdout, sizes=sizes(args), times=dict(clock.times))
    saved.write_text(json.dumps({**state, "ws": str(state["ws"])}, default=str),
                     encoding="utf-8")
    return {**state, "everyone": everyone}


def sizes(args: argparse.Namespace) -> list[Any]:
    return [args.people, args.facts, args.holdout, args.forget, args.epochs, args.lr,
            args.batch_size, args.seed, args.base]


def trained_state(args: argparse.Namespace, clock: Clock, folder: Path, everyone: list,
                  trained: list[str], forget: list[str]) -> dict[str, Any]:
    from engine.guard import subject_jobs as jobs
    from engine.guard.people import write_corpus
    from engine.jobs import CancelToken

    shutil.rmtree(folder / "ws", ignore_errors=True)
    corpus = write_corpus([r for r in everyone if r.person in trained], folder / "people.jsonl")
    ws = folder / "ws"
    options = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
               "device": "cpu", "base": args.base}
    cancel = CancelToken()
    run_both = sequentially if args.sequential else both
    ft, retain = clock("finetune all people and retain (without forgotten), "
                       + ("one after the other" if args.sequential else "in parallel"),
                       run_both, cancel, jobs.finetune_model_job(
                           ws, corpus=str(corpus), name="people", operator="bench",
                           cancel=cancel, **options),
                       jobs.finetune_model_job(ws, corpus=str(corpus), name="people-retain",
                                               operator="bench", exclude=forget,
                                               cancel=cancel, **options))
    clock.times["finetune all people (job)"] = ft["seconds"]
    clock.times["finetune retain (job)"] = retain["seconds"]
    rules = clock("requests: file, approve, build and enable rules", subject_requests, ws,
                  forget)
    return {"forget": forget, "ws": ws, "ft": ft, "retain": retain, "rules": rules}


def both(cancel: Any, first: Any, second: Any) -> tuple[Any, Any]:
    """Two jobs at once, one thread each (torch releases the GIL in its kernels): on a
    shared machine the two fine-tunes take about as long as one. The first failure is
    printed at once and cancels the other job (their shared token), instead of surfacing
    only when the other has run to its end."""
    import threading
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    # resolved here: two threads importing transformers' lazy names at once can fail
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    loaded = threading.Event()
    with ThreadPoolExecutor(2) as pool:  # one model load at a time: it is not thread-safe
        started = [pool.submit(drain, first, loaded)]
        while not loaded.wait(1.0) and not started[0].done():
            pass
        started.append(pool.submit(drain, second))
        done, _ = wait(started, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            print(f"a fine-tune failed: {failed[0].exception()!r}; cancelling the other",
                  flush=True)
            cancel.set()
        return started[0].result(), started[1].result()


def sequentially(cancel: Any, first: Any, second: Any) -> tuple[Any, Any]:
    """The two jobs one after the other (``--sequential``: one core for the bench)."""
    return drain(first), drain(second)


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


CALIBRATED = "calibrated"  # a candidate's strength: the product's calibration (section 14)
RECALL = "names, prompt and answer"  # the recall ablation's tokens (engine.guard.recall)
PSEUDONYM = "name parts, prompt and answer"  # the pseudonym's (engine.guard.pseudonym)


def guard_of(state: dict[str, Any], ft: Any, family: str, strength: float | str,
             params: dict[str, Any], scope: str = "all") -> tuple[Any, list[dict[str, Any]]]:
    """The stored rules (their classifiers and thresholds) as a Guard with the corruption
    given (the product default, or a candidate of the sweep): on ``scope`` "names" (the
    tokens naming the person) or "all" of the text, at ``strength`` embedding standard
    deviations or, for CALIBRATED, the product's calibration for each person; and the
    calibration figures per person."""
    from engine.guard.classifier import load_sentence_encoder
    from engine.guard.guard import Guard, GuardRule
    from engine.guard.recall import PERSON_FAMILIES
    from engine.guard.scope import SCOPE_KEY, subject_terms
    from engine.guard.subject_rule import calibrated_corruption, person_params
    from storage.finetunes import subject_rule_name
    from storage.workspace import Workspace

    trained = [r for r in state["everyone"] if r.person not in set(state["holdout"])]
    person_of = {subject_rule_name(p): p for p in state["forget"]}
    workspace = Workspace.open(state["ws"])
    out, found = [], []
    for r in state["rules"]:
        rule = GuardRule.from_row(r, workspace.artifacts.get(r["classifier_artifact"]))
        person = person_of[r["name"]]
        rule.corruption, rule.corruption_params = family, {"seed": 0, **params}
        if family in PERSON_FAMILIES:  # the product's: layers, terms (and pseudonyms)
            rule.corruption_params, cal = person_params(trained, person, ft, family, params)
            strength_of_rule = 0.0
            if cal:
                found.append(cal)
        elif strength == CALIBRATED:
            rule.corruption_params, cal = calibrated_corruption(
                trained, person, ft, ft.embedding_std, family, params, scope == "names")
            strength_of_rule = cal["sigma_in_std"]
            found.append({k: v for k, v in cal["strength"].items() if k != "method"})
        else:
            strength_of_rule = float(strength)
            if scope == "names":
                aliases = [a for x in trained if x.person == person for a in x.aliases]
                rule.corruption_params[SCOPE_KEY] = subject_terms(person, aliases)
        rule.sigma = strength_of_rule * ft.embedding_std
        out.append(rule)
    workspace.close()
    return Guard(out, load_sentence_encoder()), found


def sets_of(args: argparse.Namespace, state: dict[str, Any]) -> Any:
    """The product's audit sets for all forgotten people at once; the never-trained people
    are the bench's own hold-out people (same generator and seed, never fine-tuned on)."""
    from engine.guard.subject_audit import AuditSets, audit_sets, held_out

    trained = [r for r in state["everyone"] if r.person not in set(state["holdout"])]
    sets = audit_sets(trained, state["forget"], args.utility_sample)
    never = [r for r in state["everyone"] if r.person in set(state["holdout"])]
    return AuditSets(sets.forget, sets.others, held_out(never), sets.verbatim, never)


def measure(args: argparse.Namespace, clock: Clock, state: dict[str, Any]) -> dict[str, Any]:
    from engine.guard import subject_audit as audit
    from engine.guard.lm import load_language_model
    from engine.guard.subject_rule import SUBJECT_CORRUPTION
    from engine.jobs import run_job

    ft = clock("load fine-tuned", load_language_model, state["ft"]["folder"], "cpu")
    retain = clock("load retain", load_language_model, state["retain"]["folder"], "cpu")
    saved = Path(args.workdir or "/nonexistent") / "sweep.json"
    chosen = (SUBJECT_CORRUPTION, 0.0, {}, PSEUDONYM)  # the product's default
    if args.corruption == "best":  # try the sweep's choice before it becomes the default
        swept = json.loads(saved.read_text(encoding="utf-8"))
        best = choose(swept["sweep"], swept.get("finetuned_forget_quality", 0.0))
        chosen = (best["corruption"], best["sigma_in_std"], best["params"],
                  best.get("scope", "all"))
    sets = sets_of(args, state)
    if args.sweep_only:
        return sweep_only(args, clock, state, ft, retain, sets, saved)
    guard, calibration = clock("load guard (and calibrate its strength)", guard_of, state,
                               ft, *chosen)
    folder = Path(args.workdir or "/nonexistent")
    raw = {}
    for name in args.models.split(","):
        raw[name] = clock(f"figures: {name} (answers, truth ratios, utility, attacks)",
                          run_job, audit.figures_of_models(
                              ft, retain, audit.corruption_for(guard), sets,
                              args.max_new_tokens, which=[name]))[name]
        if args.workdir:  # a later run may redo one model (--models guarded), keep the rest
            (folder / f"figures-{name}.json").write_text(json.dumps(
                {"figures": raw[name], "seconds": clock.times[f"figures: {name} (answers, "
                 "truth ratios, utility, attacks)"]}), encoding="utf-8")
    for kept in sorted(folder.glob("figures-*.json")) if args.workdir else []:
        name = kept.stem.removeprefix("figures-")
        if name not in raw:
            earlier = json.loads(kept.read_text(encoding="utf-8"))
            raw[name] = earlier["figures"]
            clock.times[f"figures: {name} (earlier run)"] = earlier["seconds"]
    metrics, curves = audit.summary(raw, {"model": "people-retain"})
    sweep = []
    if saved.is_file():  # the sweep of an earlier --sweep-only run on the same models
        earlier = json.loads(saved.read_text(encoding="utf-8"))
        sweep = earlier["sweep"]
        clock.times["corruption sweep (earlier run)"] = earlier["times"]["corruption sweep"]
    draws = clock("pseudonym draws", pseudonym_draws, ft, state, sets, raw.get("retain"),
                  args.draws) if args.draws and "retain" in raw else []
    held = [q for r in state["everyone"] if r.person in set(state["forget"])
            for q in held_questions_of(r)]
    flagged = sum(guard.classify(q).flagged for q in held)
    others = [q for r in sets.others for q in held_questions_of(r)]
    false = sum(guard.classify(q).flagged for q in others)
    return {"models": metrics["models"], "curves": curves, "sweep": sweep,
            "pseudonym_draws": draws,
            "guarded_corruption": {"family": chosen[0], "sigma_in_std": chosen[1],
                                   "params": chosen[2], "scope": chosen[3],
                                   "calibration": calibration},
            "counts": {"forget": len(sets.forget), "utility": len(sets.others),
                       "never_trained": len(sets.never), "verbatim": len(sets.verbatim)},
            "classifier": {"rules": [r["calibration"] for r in state["rules"]],
                           "tpr_held_out_phrasings_guard": flagged / len(held),
                           "fpr_other_people_held_out_guard": false / len(others),
                           "n_held_out": len(held), "n_other": len(others)},
            "finetune": {"all": state["ft"], "retain": state["retain"]}}


def pseudonym_draws(ft: Any, state: dict[str, Any], sets: Any, retain: dict[str, Any],
                    count: int) -> list[dict[str, Any]]:
    """Forget quality and PrivLeak (held-out and training questions) of the pseudonym
    under ``count`` draws of invented names (draw 0 is the product's): the figures should
    not rest on one lucky draw."""
    from engine.guard import tofu
    from engine.guard.subject_audit import corruption_for

    rows = []
    for draw in range(count):
        guard, _ = guard_of(state, ft, "pseudonym", 0.0, {"draw": draw}, PSEUDONYM)
        pick = corruption_for(guard)
        ratios = tofu.truth_ratios(ft, sets.forget, pick)
        held = tofu.membership(ft, sets.forget, sets.never, pick)["auc"]
        verbatim = tofu.membership(ft, sets.verbatim, sets.verbatim_never, pick)["auc"]
        rows.append({
            "draw": draw, "forget_quality": tofu.forget_quality(ratios, retain["truth_ratios"]),
            "privleak": {a: tofu.privleak(v, retain["mia"]["auc"][a]) for a, v in held.items()},
            "privleak_verbatim": {a: tofu.privleak(v, retain["mia_verbatim"][a])
                                  for a, v in verbatim.items()}})
        print(f"    draw {draw}: FQ {rows[-1]['forget_quality']:.3g} PrivLeak "
              f"{ {a: round(100 * v, 1) for a, v in rows[-1]['privleak'].items()} } training "
              f"{ {a: round(100 * v, 1) for a, v in rows[-1]['privleak_verbatim'].items()} }",
              flush=True)
    return rows


def sweep_only(args: argparse.Namespace, clock: Clock, state: dict[str, Any], ft: Any,
               retain: Any, sets: Any, saved: Path) -> dict[str, Any]:
    """The corruption sweep alone, saved in the workdir for the next run."""
    from engine.guard import tofu

    reference = clock("truth ratios and attacks retain", lambda: {
        "truth_ratios": tofu_ratios(retain, sets),
        "mia": tofu.membership(retain, sets.forget, sets.never)})
    sweep = clock("corruption sweep", corruption_sweep, ft, state, sets, reference, args)
    floor = tofu.forget_quality(tofu_ratios(ft, sets), reference["truth_ratios"])
    print(f"    unguarded fine-tuned: FQ {floor:.3g}", flush=True)
    if saved.is_file() and args.sweep_rows:  # keep the rows of an earlier sweep not redone
        done = {row_key(r) for r in sweep}
        sweep = [r for r in json.loads(saved.read_text(encoding="utf-8"))["sweep"]
                 if row_key(r) not in done] + sweep
    saved.write_text(json.dumps({"sweep": sweep, "finetuned_forget_quality": floor,
                                 "times": clock.times}), encoding="utf-8")
    return {"sweep": sweep, "models": {}}


def row_key(row: dict[str, Any]) -> tuple:
    return (row["corruption"], row["sigma_in_std"], json.dumps(row["params"]),
            row.get("scope", "all"))


def choose(sweep: list[dict[str, Any]], floor: float = 0.0) -> dict[str, Any]:
    """The sweep's choice: of the corruptions that reach forget quality 0.05 and beat the
    unguarded fine-tuned model's (``floor``: a corruption that does not move it proves
    nothing), the one with the least repetition, then the fewest attacks whose PrivLeak is
    outside +-10% (a row without PrivLeak counts all four), then the lowest perplexity;
    else the highest forget quality."""
    good = [r for r in sweep if r["forget_quality"] >= max(0.05, floor + 1e-9)]
    if good:
        return min(good, key=lambda r: (round(r["repetition"], 3), leaks(r),
                                        r["perplexity_under_finetuned"]))
    return max(sweep, key=lambda r: r["forget_quality"])


def leaks(row: dict[str, Any]) -> int:
    """How many attacks' PrivLeak is outside +-10% (4 when not measured)."""
    privleak = row.get("privleak") or {}
    return sum(abs(v) > 0.10 for v in privleak.values()) if privleak else 4


def tofu_ratios(lm: Any, sets: Any) -> list[float]:
    from engine.guard import tofu

    return tofu.truth_ratios(lm, sets.forget)


def held_questions_of(record: Any) -> list[str]:
    from engine.guard.subject_rule import held_questions

    return held_questions(record)


SWEEP = [("gaussian_first_n", s, {"n": None}, "all") for s in (1.0, 4.0, 16.0)] + [
    ("zero_out_top_k", 0.0, {"k": None}, "all"), ("flip_sign_top_k", 0.0, {"k": None}, "all"),
    ("shuffle", 0.0, {}, "all"), ("gaussian_first_n", 1.0, {"n": None}, "names"),
    ("gaussian_first_n", CALIBRATED, {"n": None}, "all"),
    ("gaussian_first_n", CALIBRATED, {"n": None}, "names")] + [
    ("recall_ablation", 0.0, {"first": 1, "last": last}, RECALL) for last in (4, 5, 6, 7, 8)] + [
    ("pseudonym", 0.0, {}, PSEUDONYM)]


def corruption_sweep(ft: Any, state: dict[str, Any], sets: Any, retain: dict[str, Any],
                     args: argparse.Namespace) -> list[dict[str, Any]]:
    """Forget quality (vs retain), PrivLeak (vs retain, the four attacks), repetition and
    the fine-tuned model's perplexity of the guarded answers, for every candidate
    corruption (``--sweep-rows`` picks some)."""
    rows = []
    wanted = [int(i) for i in args.sweep_rows.split(",")] if args.sweep_rows else None
    for i, (family, strength, params, scope) in enumerate(SWEEP):
        if wanted is None or i in wanted:
            rows.append(sweep_row(ft, state, sets, retain, args, family, strength, params,
                                  scope))
    return rows


def sweep_row(ft: Any, state: dict[str, Any], sets: Any, retain: dict[str, Any],
              args: argparse.Namespace, family: str, strength: float | str,
              params: dict[str, Any], scope: str) -> dict[str, Any]:
    from engine.guard import tofu
    from engine.guard.subject_audit import corruption_for, guarded_answers

    probe = sets.forget[::max(1, len(sets.forget) // args.sweep_answers)][:args.sweep_answers]
    qs = [r.question for r in probe]
    started = time.perf_counter()
    guard, calibration = guard_of(state, ft, family, strength, params, scope)
    pick = corruption_for(guard)
    ratios = tofu.truth_ratios(ft, sets.forget, pick)
    auc = tofu.membership(ft, sets.forget, sets.never, pick)["auc"]
    texts = guarded_answers(ft, pick, qs, [""] * len(qs), args.max_new_tokens)
    ppl = sorted(tofu.perplexity(ft, [(q, t or ".") for q, t in zip(qs, texts, strict=True)]))
    row = {"corruption": family, "sigma_in_std": strength, "params": params, "scope": scope,
           "calibration": calibration,
           "forget_quality": tofu.forget_quality(ratios, retain["truth_ratios"]),
           "truth_ratio_mean": sum(ratios) / len(ratios),
           "privleak": {a: tofu.privleak(auc[a], retain["mia"]["auc"][a]) for a in auc},
           "repetition": sum(map(tofu.repetition, texts)) / len(texts),
           "perplexity_under_finetuned": ppl[len(ppl) // 2],
           "examples": texts[:3], "seconds": round(time.perf_counter() - started, 1)}
    print(f"    sweep {family} {strength} {scope}: FQ {row['forget_quality']:.3g} PrivLeak "
          f"{ {a: round(100 * v) for a, v in row['privleak'].items()} } rep "
          f"{row['repetition']:.3f} ppl {row['perplexity_under_finetuned']:.1f} "
          f"{texts[0]!r}", flush=True)
    return row


def print_table(result: dict[str, Any]) -> None:
    from reports.subject_text import MODELS, subject_rows

    rows = [["figure", *MODELS, "target"], *subject_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    for row in result["sweep"]:
        print(f"sweep {row['corruption']:17} {row['sigma_in_std']:4} {str(row['params']):12} "
              f"FQ {row['forget_quality']:.3g}  rep {row['repetition']:.3f}  "
              f"ppl {row['perplexity_under_finetuned']:.1f}")
    for row in result.get("pseudonym_draws") or []:
        print(f"pseudonym draw {row['draw']}: FQ {row['forget_quality']:.3g}  PrivLeak "
              + " / ".join(f"{100 * v:+.1f}" for v in row["privleak"].values())
              + "%  training questions "
              + " / ".join(f"{100 * v:+.1f}" for v in row["privleak_verbatim"].values()) + "%")
    for name, seconds in result["wall_seconds"].items():
        print(f"{seconds:9.1f} s  {name}")


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """The corpus sizes both people benches take (``--forget`` defaults to 10% of people:
    ``forgotten_count``)."""
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--facts", type=int, default=10)
    parser.add_argument("--holdout", type=int, default=4)
    parser.add_argument("--forget", type=int, default=None, help="default: 10%% of people")


def forgotten_count(args: argparse.Namespace) -> int:
    return args.forget or max(1, round(args.people / 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_corpus_arguments(parser)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--utility-sample", type=int, default=40)
    parser.add_argument("--sweep-answers", type=int, default=5)
    parser.add_argument("--models", default="fine-tuned,guarded,retain",
                        help="models to score; the others' figures come from --workdir")
    parser.add_argument("--corruption", choices=["default", "best"], default="default",
                        help="the guarded model's corruption: the product default, or the "
                             "choice of an earlier --sweep-only run")
    parser.add_argument("--sweep-rows", help="comma-separated indices of SWEEP to run "
                        "(default: all; the others' rows are kept from --workdir)")
    parser.add_argument("--sweep-only", action="store_true",
                        help="only the corruption sweep (saved in --workdir for the next run)")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--draws", type=int, default=0,
                        help="also measure the pseudonym under this many draws of invented "
                             "names (forget quality and PrivLeak; draw 0 is the product's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sequential", action="store_true",
                        help="run the two fine-tunes one after the other (one core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base", help="base model spec (default: the offline SmolLM2)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--workdir", help="keep the corpus, models and rules here and reuse "
                        "them on the next run with the same sizes (default: a temporary folder)")
    args = parser.parse_args()
    args.forget = forgotten_count(args)
    import torch

    torch.set_num_threads(args.threads)
    clock = Clock()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-subjects-") as tmp:
        folder = Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        state = setup(args, clock, folder)
        result = measure(args, clock, state)
    result.update({"config": vars(args), "wall_seconds": clock.times,
                   "forgotten": len(state["forget"]), "holdout": len(state["holdout"]),
                   "load_before": load_before, "load_after": os.getloadavg()})
    Path(args.out).write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    print_table(result)


if __name__ == "__main__":
    main()
