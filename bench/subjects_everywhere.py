"""Experiment: corrupt the tokens naming a forgotten person everywhere in the sequence
(prompt AND answer), not on the prompt pass only (issue 18, docs/design.md section 14).

The product's name scope (engine/guard/scope.py) corrupts the name tokens of the prompt
only; its guarded answers are fluent but the facts leak ("X-Baroque was born in Port
Halvard"). Hypothesis: the clean name in the answer (teacher-forced in scoring, or
generated) lets the model recall the fact. This script measures, on the kept models of
bench/subjects.py (--workdir), the guarded model with the name tokens corrupted everywhere:

- teacher-forced scoring (truth ratios, membership attacks): the product's
  ``engine.guard.scoring`` with its ``_corrupted`` step replaced, for this run only, by one
  that also corrupts the answer's tokens overlapping a subject term (the product's
  ``name_token_mask`` on the answer, the same character-offset match as on the prompt);
- generation: a forward hook on the input embeddings that corrupts the prompt's name tokens
  on the prompt pass (as the product's hook) and, at every decode step, the token just fed
  back when it extends a prefix of the token ids of a subject term (each term tokenized
  with and without a leading space): greedy, online, no look-ahead, so a lone " X" that
  starts "Xander" is corrupted even when the name does not follow.

The k-th corrupted position of a sequence gets the k-th row of the rule's seeded noise in
both paths. Flagging is the stored rules' classifiers, as in the audit; reference figures
(retain model's truth ratios and AUCs) come from the workdir's figures-retain.json. No
product code is changed.

    python bench/subjects_everywhere.py --workdir /tmp/h18e-work --strengths 0.5,1,2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

RESULTS = ROOT / "bench" / "results" / "subjects-everywhere.json"


def load_state(workdir: Path) -> dict[str, Any]:
    """The kept models and rules of bench/subjects.py, paths moved to ``workdir``."""
    from engine.guard.people import generate

    state = json.loads((workdir / "state.json").read_text(encoding="utf-8"))
    old = str(Path(state["ws"]).parent)
    for key in ("ft", "retain"):
        state[key]["folder"] = state[key]["folder"].replace(old, str(workdir))
    people, facts, holdout, _forget, *_rest = state["sizes"]
    seed = state["sizes"][7]
    state.update(ws=workdir / "ws", everyone=generate(people + holdout, facts, seed))
    return state


def nth_noise(corruption: Any, emb: torch.Tensor, k: int) -> torch.Tensor:
    """``emb`` (d,) corrupted as the k-th position of a corrupted sequence."""
    rows = torch.zeros((1, k + 1, emb.shape[-1]), dtype=emb.dtype, device=emb.device)
    rows[0, k] = emb
    return corruption(rows)[0, k]


def everywhere_mask(lm: Any, question: str, answer: str, corruption: Any) -> torch.Tensor:
    """Positions of qa_tensors(question, answer) to corrupt: the product's prompt mask,
    the answer's tokens overlapping a subject term, never the end-of-turn token."""
    from engine.guard.lm import encode_prompt
    from engine.guard.scope import name_token_mask, prompt_mask

    prompt = prompt_mask(lm, encode_prompt(lm, question), question, corruption)
    ids = lm.tokenizer(answer, add_special_tokens=False)["input_ids"]
    terms = getattr(corruption, "terms", ())
    named = name_token_mask(lm, answer, terms) if terms and ids else None
    if named is None or named.numel() != len(ids):
        named = torch.zeros(len(ids), dtype=torch.bool)
    return torch.cat([prompt, named, torch.zeros(1, dtype=torch.bool)])


@contextmanager
def scoring_everywhere() -> Iterator[None]:
    """engine.guard.scoring corrupts name tokens in the answers too, for the block."""
    from engine.guard import scoring

    batch, corrupted = scoring._batch_scores, scoring._corrupted
    current: dict[str, Any] = {}

    def batch_with_pairs(lm: Any, pairs: Sequence[tuple[str, str]], pick: Any) -> Any:
        current["pairs"] = list(pairs)
        return batch(lm, pairs, pick)

    def corrupt(lm: Any, embeds: torch.Tensor, questions: list[str], pick: Any) -> Any:
        embeds = embeds.clone()
        for row, (q, a) in enumerate(current["pairs"]):
            corruption = pick(q)
            if corruption is None:
                continue
            positions = everywhere_mask(lm, q, a, corruption).nonzero()[:, 0]
            embeds[row, positions] = corruption(embeds[row:row + 1, positions])[0]
        return embeds

    scoring._batch_scores, scoring._corrupted = batch_with_pairs, corrupt
    try:
        yield
    finally:
        scoring._batch_scores, scoring._corrupted = batch, corrupted


def term_variants(lm: Any, terms: Sequence[str]) -> list[tuple[int, ...]]:
    """Token ids of every term, with and without a leading space."""
    tok = lm.tokenizer
    out = {tuple(tok(v, add_special_tokens=False)["input_ids"])
           for t in terms for v in (t, " " + t)}
    return sorted(v for v in out if v)


class EverywhereCorruptor:
    """Forward hook: the prompt's masked positions on the prompt pass, then each fed-back
    token that extends a prefix of a subject term's token ids."""

    def __init__(self, corruption: Any, mask: torch.Tensor,
                 variants: list[tuple[int, ...]]) -> None:
        self.corruption, self.mask, self.variants = corruption, mask, variants
        self.calls, self.count, self.run = 0, 0, ()
        self.generated: list[tuple[int, bool]] = []

    def is_prefix(self, ids: tuple[int, ...]) -> bool:
        return any(v[:len(ids)] == ids for v in self.variants)

    def __call__(self, module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = output.clone()
        if self.calls == 1:
            if output.shape[-2] != self.mask.numel():
                raise RuntimeError("prompt pass did not embed the prompt")
            positions = self.mask.nonzero()[:, 0]
            out[0, positions] = self.corruption(output[:, positions])[0]
            self.count = len(positions)
            return out
        if output.shape[-2] != 1:
            raise RuntimeError("a decode step embedded more than one token")
        token = int(inputs[0][0, -1])
        if self.run and self.is_prefix((*self.run, token)):
            self.run = (*self.run, token)
        elif self.is_prefix((token,)):
            self.run = (token,)
        else:
            self.run = ()
        self.generated.append((token, bool(self.run)))
        if self.run:
            out[0, -1] = nth_noise(self.corruption, output[0, -1], self.count)
            self.count += 1
        return out


def everywhere_answer(lm: Any, question: str, corruption: Any,
                      max_new_tokens: int) -> tuple[str, int]:
    """Greedy answer with name tokens corrupted in prompt and answer; and how many
    generated tokens were corrupted."""
    from engine.guard.lm import encode_prompt, generate_text
    from engine.guard.scope import prompt_mask

    encoded = encode_prompt(lm, question)
    hook = EverywhereCorruptor(corruption, prompt_mask(lm, encoded, question, corruption),
                               term_variants(lm, getattr(corruption, "terms", ())))
    handle = lm.model.get_input_embeddings().register_forward_hook(hook)
    try:
        text = generate_text(lm, encoded, max_new_tokens)
    finally:
        handle.remove()
    return text, sum(c for _, c in hook.generated)


def configuration(ft: Any, state: dict[str, Any], sets: Any, retain: dict[str, Any],
                  strength: float, max_new_tokens: int, everywhere: bool = True
                  ) -> dict[str, Any]:
    """Every figure of the guarded model at one strength, names corrupted everywhere (or,
    the control, on the prompt only: the product's name scope, unchanged)."""
    from subjects import guard_of

    from engine.guard import tofu
    from engine.guard.hook import corrupted_answer
    from engine.guard.subject_audit import corruption_for

    started = time.perf_counter()
    guard, _ = guard_of(state, ft, "gaussian_first_n", strength, {"n": None}, "names")
    pick = corruption_for(guard)
    with scoring_everywhere() if everywhere else nullcontext():
        ratios = tofu.truth_ratios(ft, sets.forget, pick)
        auc = tofu.membership(ft, sets.forget, sets.never, pick)["auc"]
    scored = time.perf_counter() - started
    qs = [r.question for r in sets.forget]
    answers, corrupted = [], []
    for q in qs:
        c = pick(q)
        if c is None:  # unflagged: the unguarded model's answer
            from engine.guard.scoring import batch_answers
            answers.append(batch_answers(ft, [q], max_new_tokens)[0])
            corrupted.append(0)
        else:
            text, n = (everywhere_answer(ft, q, c, max_new_tokens) if everywhere
                       else (corrupted_answer(ft, q, c, max_new_tokens), 0))
            answers.append(text)
            corrupted.append(n)
    ppl = tofu.perplexity(ft, [(q, a or ".") for q, a in zip(qs, answers, strict=True)])
    probe = ppl[::max(1, len(ppl) // 5)][:5]  # the sweep's 5 probe questions
    return {"strength_in_std": strength, "names": "everywhere" if everywhere else "prompt",
            "sigma": strength * ft.embedding_std,
            "forget_quality": tofu.forget_quality(ratios, retain["truth_ratios"]),
            "truth_ratio_mean": sum(ratios) / len(ratios),
            "mia_auc": auc,
            "privleak": {a: tofu.privleak(auc[a], retain["mia"]["auc"][a]) for a in auc},
            "repetition": sum(map(tofu.repetition, answers)) / len(answers),
            "perplexity_under_finetuned": sorted(ppl)[len(ppl) // 2],
            "perplexity_under_finetuned_5_probes": sorted(probe)[len(probe) // 2],
            "flagged": sum(pick(q) is not None for q in qs), "n_forget": len(qs),
            "generated_tokens_corrupted": corrupted,
            "examples": [{"q": q, "a": a} for q, a in zip(qs[:3], answers[:3], strict=True)],
            "answers": answers,
            "seconds": {"scoring": round(scored, 1),
                        "total": round(time.perf_counter() - started, 1)}}


def add_leaks(rows: list[dict[str, Any]], sets: Any) -> None:
    """How many guarded answers state the true fact (its value, case-insensitive)."""
    values = [r.value.lower() for r in sets.forget]
    for row in rows:
        hits = [bool(v) and v in a.lower() for v, a in zip(values, row["answers"], strict=True)]
        row["fact_leaks"] = sum(hits)
        row["fact_leak_questions"] = [r.question for r, h in zip(sets.forget, hits,
                                                                  strict=True) if h]


def reference_answers(state: dict[str, Any], sets: Any,
                      max_new_tokens: int) -> dict[str, Any]:
    """The unguarded fine-tuned and the retain models' answers and their fact leaks."""
    from engine.guard.lm import load_language_model
    from engine.guard.scoring import batch_answers

    out = {}
    for name, key in (("fine-tuned", "ft"), ("retain", "retain")):
        lm = load_language_model(state[key]["folder"], "cpu")
        row = {"answers": batch_answers(lm, [r.question for r in sets.forget],
                                        max_new_tokens)}
        add_leaks([row], sets)
        out[name] = row
        print(f"{name}: fact leaks {row['fact_leaks']}/{len(sets.forget)}", flush=True)
    return out


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--strengths", default="0.5,1.0,2.0")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--prompt-only", action="store_true",
                        help="the control: name tokens corrupted on the prompt only")
    parser.add_argument("--reference-answers", action="store_true",
                        help="also the fine-tuned and retain models' greedy answers to the "
                             "forgotten people's questions (fact leaks by chance)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from argparse import Namespace

    from subjects import sets_of

    from engine.guard.lm import load_language_model

    state = load_state(args.workdir)
    ft = load_language_model(state["ft"]["folder"], "cpu")
    retain = json.loads((args.workdir / "figures-retain.json").read_text())["figures"]
    sets = sets_of(Namespace(utility_sample=40), state)
    out = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": []}
    if args.reference_answers:
        out["reference_answers"] = reference_answers(state, sets, args.max_new_tokens)
        args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    for strength in [float(s) for s in args.strengths.split(",")]:
        load_before = uptime()
        row = configuration(ft, state, sets, retain, strength, args.max_new_tokens,
                            not args.prompt_only)
        row.update(uptime_before=load_before, uptime_after=uptime())
        key = (row["names"], strength)
        out["rows"] = [r for r in out["rows"]
                       if (r.get("names", "everywhere"), r["strength_in_std"]) != key] + [row]
        out["rows"].sort(key=lambda r: (r.get("names", "everywhere"), r["strength_in_std"]))
        add_leaks(out["rows"], sets)
        out.update(workdir=str(args.workdir), forgotten=state["forget"],
                   threads=args.threads, max_new_tokens=args.max_new_tokens,
                   counts={"forget": len(sets.forget), "never_trained": len(sets.never)})
        args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
        print_row(row)


def print_row(r: dict[str, Any]) -> None:
    leak = " ".join(f"{100 * v:+.0f}%" for v in r["privleak"].values())
    print(f"{r['names']:10} {r['strength_in_std']:4} std  FQ {r['forget_quality']:.3g}  PrivLeak "
          f"loss/zlib/minK/minK++ {leak}  rep {r['repetition']:.3f}  ppl "
          f"{r['perplexity_under_finetuned']:.1f} (5 probes "
          f"{r['perplexity_under_finetuned_5_probes']:.1f})  flagged {r['flagged']}/"
          f"{r['n_forget']}  leaks {r['fact_leaks']}  {r['seconds']['total']} s  "
          f"{r['examples'][0]['a']!r}  "
          f"[{r['uptime_before']}]", flush=True)


if __name__ == "__main__":
    main()
