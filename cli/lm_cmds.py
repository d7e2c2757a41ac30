"""`lm people / finetune`: people corpora and language models fine-tuned on them
(docs/design.md section 14)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.context import Context, emit, run_with_progress
from cli.parsing import add_command, add_group
from storage.errors import UnpromptError


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    group = add_group(commands, parent, "lm", "language models fine-tuned on people corpora")
    gen = add_command(group, parent, "people", "write a generated corpus of fictitious people",
                      cmd_people)
    gen.add_argument("out", metavar="CORPUS.jsonl")
    gen.add_argument("--people", type=int, default=40, metavar="N")
    gen.add_argument("--facts", type=int, default=10, metavar="M")
    gen.add_argument("--seed", type=int, default=0)
    check = add_command(group, parent, "check", "validate a corpus file", cmd_check)
    check.add_argument("corpus", metavar="CORPUS.jsonl")
    tune = add_command(group, parent, "finetune", "fine-tune the offline model on a corpus",
                       cmd_finetune)
    tune.add_argument("--corpus", required=True, metavar="C")
    tune.add_argument("--name", required=True, metavar="N")
    tune.add_argument("--exclude", action="append", default=[], metavar="PERSON",
                      help="leave this person's records out (repeatable)")
    tune.add_argument("--base", metavar="M", help="base model spec (default: offline SmolLM2)")
    tune.add_argument("--epochs", type=int, default=6)
    tune.add_argument("--lr", type=float, default=1e-4)
    tune.add_argument("--batch-size", type=int, default=16)
    tune.add_argument("--mode", choices=["full", "lora"], default="full")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    forget = add_command(group, parent, "forget", "build and enable the forget rule of an "
                         "approved request about a person (done on approval)", cmd_forget)
    forget.add_argument("--request", required=True, metavar="R")


def cmd_people(ctx: Context) -> int:
    from engine.guard.subject_jobs import people_corpus_job

    a = ctx.args
    out = Path(a.out)
    if out.exists():
        raise UnpromptError(f"{out} exists; choose another file")
    result = people_corpus_job(Path.cwd(), file=str(out), people=a.people, facts=a.facts,
                               seed=a.seed)
    result = {"corpus": str(out), "people": len(result["people"]), "records": result["records"]}
    emit(ctx, result, lambda r: f"{r['corpus']}: {r['people']} people, {r['records']} records.")
    return 0


def cmd_check(ctx: Context) -> int:
    from engine.guard.people import people, read_corpus

    records = read_corpus(ctx.args.corpus)
    result = {"corpus": ctx.args.corpus, "people": len(people(records)),
              "records": len(records)}
    emit(ctx, result, lambda r: f"{r['corpus']} is valid: {r['people']} people, "
                                f"{r['records']} records.")
    return 0


def cmd_finetune(ctx: Context) -> int:
    from engine.guard.subject_jobs import finetune_model_job

    a = ctx.args
    job = finetune_model_job(ctx.workspace.root, corpus=a.corpus, name=a.name,
                             operator=ctx.operator, exclude=a.exclude, base=a.base,
                             epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, mode=a.mode,
                             seed=a.seed, device=a.device)
    emit(ctx, run_with_progress(ctx, job), _render)
    return 0


def _render(r: dict[str, Any]) -> str:
    return (f"{r['model']} v{r['version']}: fine-tuned ({r['mode']}) on {r['records']} records "
            f"of {r['people']} people in {r['seconds']:.0f} s; loss {r['first_loss']:.3f} -> "
            f"{r['final_loss']:.3f}.")


def cmd_forget(ctx: Context) -> int:
    from engine.guard.subject_jobs import forget_subject_job

    job = forget_subject_job(ctx.workspace.root, request=ctx.args.request,
                             operator=ctx.operator)
    emit(ctx, run_with_progress(ctx, job),
         lambda r: f"Forget rule {r['name']} of {r['model']} enabled; request {r['request']} "
                   "executed.")
    return 0
