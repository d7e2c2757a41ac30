"""`pretrain`, `train`, `evaluate`, `forget`, `learn`: pre-forgettable image models."""

from __future__ import annotations

import argparse
from typing import Any

from cli.context import Context, emit, run_with_progress, table
from cli.parsing import add_command
from storage.erasure_kinds import describe
from storage.errors import UnpromptError
from storage.scan_proofs import coverage_text

DATASETS = ["digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder"]
MODES = ["independent", "isolated", "frozen", "lora", "full"]
SCRUB_STEPS = 200  # engine.scrub.DEFAULT_STEPS (not imported: torch loads lazily)


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    pretrain = add_command(commands, parent, "pretrain",
                           "train and register a backbone on data declared non-erasable",
                           cmd_pretrain)
    _data_options(pretrain)
    pretrain.add_argument("--name", required=True)
    _training_options(pretrain)
    train = add_command(commands, parent, "train", "train a pre-forgettable image model",
                        cmd_train)
    _data_options(train)
    train.add_argument("--name", required=True)
    train.add_argument("--backbone", help="timm ViT name (vit_*)")
    train.add_argument("--backbone-from", metavar="B", help="a backbone registered by `pretrain`")
    train.add_argument("--pretrained", metavar="none/hub/FILE")
    train.add_argument("--mode", choices=MODES)
    _training_options(train)
    evaluate = add_command(commands, parent, "evaluate", "per-class test accuracy",
                           cmd_evaluate)
    evaluate.add_argument("model", metavar="N")
    forget = add_command(commands, parent, "forget", "forget classes by deleting their prompts",
                         cmd_forget)
    forget.add_argument("model", metavar="N")
    forget.add_argument("--class", dest="classes", action="append", default=[], metavar="C")
    forget.add_argument("--request", metavar="R")
    forget.add_argument("--scrub", action="store_true",
                        help="lora/full models: then fine-tune the shared weights on the "
                             "retained classes (approximate erasure)")
    forget.add_argument("--scrub-steps", type=_positive_int, metavar="K",
                        help=f"scrub length in training steps (default {SCRUB_STEPS})")
    forget.add_argument("--also-shared", action="store_true",
                        help="also forget the classes from other models that hold the very "
                             "same class bytes (models trained alike)")
    learn = add_command(commands, parent, "learn", "add a class as a new prompt", cmd_learn)
    learn.add_argument("model", metavar="N")
    learn.add_argument("--class-name", required=True, metavar="X")
    learn.add_argument("--data-dir", required=True, metavar="P",
                       help="a folder of images of the new class")
    learn.add_argument("--epochs", type=int, default=10)


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--data-dir", metavar="P")
    parser.add_argument("--classes", nargs="+", metavar="C")


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=_positive_int)
    parser.add_argument("--img-size", type=_positive_int, metavar="S")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--stream", action="store_true", default=None,
                        help="decode the images once into an on-disk cache and stream "
                             "them (datasets larger than memory)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _options(a: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {n: getattr(a, n) for n in names if getattr(a, n, None) is not None}


def cmd_pretrain(ctx: Context) -> int:
    from engine.image_jobs import pretrain_backbone_job

    a = ctx.args
    opts = _options(a, "dataset", "data_dir", "classes", "epochs", "img_size", "seed", "device",
                    "stream")
    job = pretrain_backbone_job(ctx.workspace.root, name=a.name, operator=ctx.operator, **opts)
    result = run_with_progress(ctx, job)
    emit(ctx, result, lambda r: f"Backbone {r['name']} registered: test accuracy "
                                f"{r['test_accuracy']:.1%} in {r['seconds']:.0f} s.")
    return 0


def cmd_train(ctx: Context) -> int:
    from engine.image_jobs import train_model_job

    a = ctx.args
    opts = _options(a, "dataset", "data_dir", "classes", "backbone", "pretrained", "mode",
                    "epochs", "img_size", "seed", "device", "stream")
    job = train_model_job(ctx.workspace.root, name=a.name, operator=ctx.operator,
                          backbone_from=a.backbone_from, **opts)
    result = run_with_progress(ctx, job)
    emit(ctx, result, lambda r: f"Model {r['name']} v{r['version']} ({r['mode']}, erasure "
                                f"{r['erasure_kind']}): test accuracy {r['test_accuracy']:.1%} "
                                f"in {r['seconds']:.0f} s.\nErasure kind {r['erasure_kind']}: "
                                f"{describe(r['erasure_kind'])}")
    return 0


def cmd_evaluate(ctx: Context) -> int:
    from engine.image_jobs import evaluate_model

    result = evaluate_model(ctx.workspace.root, ctx.args.model)
    emit(ctx, result, _render_accuracy)
    return 0


def _render_accuracy(r: dict[str, Any]) -> str:
    rows = [[name, f"{acc:.1%}"] for name, acc in r["per_class"].items()]
    head = f"{r['model']} v{r['version']}: retained-class accuracy {r['retained']:.1%}"
    return head + "\n" + table(rows, ["class", "accuracy"])


def cmd_forget(ctx: Context) -> int:
    from engine.forget import forget_job

    a = ctx.args
    classes = a.classes or _request_classes(ctx, a.request)
    if a.scrub_steps is not None and not a.scrub:
        raise UnpromptError("--scrub-steps needs --scrub")
    scrub = (a.scrub_steps or SCRUB_STEPS) if a.scrub else None
    job = forget_job(ctx.workspace.root, model_name=a.model, classes=classes,
                     operator=ctx.operator, request=a.request, scrub=scrub,
                     also_shared=a.also_shared)
    emit(ctx, run_with_progress(ctx, job), _render_forget)
    return 0


def _request_classes(ctx: Context, request_id: str | None) -> list[str]:
    """`forget N --request R` without --class forgets the request's scope."""
    from storage.requests import get_request

    if request_id is None:
        return []
    with ctx.workspace.sessions() as session:
        scope = get_request(session, request_id).scope
    return [str(c["index"]) for c in scope.get("classes", [])]


def _render_forget(r: dict[str, Any]) -> str:
    scan = "clean" if r["residual_scan"]["clean"] else "NOT CLEAN"
    before, after = r["accuracy_before"]["retained"], r["accuracy_after"]["retained"]
    return (f"Forgot {', '.join(r['forgotten'])} from {r['model']}: v{r['from_version']} -> "
            f"v{r['version']} in {r['latency_ms']:.0f} ms ({r['erasure_kind']} erasure).\n"
            f"Purged {len(r['purged'])} artifact(s); residual scan {scan} "
            f"({coverage_text(r['residual_scan'])}).\n"
            f"Retained-class accuracy {before:.1%} -> {after:.1%}; forgotten: " +
            ", ".join(f"{k} {v:.0%}" for k, v in r["accuracy_after"]["forgotten"].items())
            + _render_also(r) + _render_scrub(r.get("scrub")) + "\n" + r["erasure_statement"])


def _render_also(r: dict[str, Any]) -> str:
    """The other models that held the same bytes, and the references that learned them."""
    also = "".join(f"\nAlso forgot classes {', '.join(map(str, o['classes']))} from "
                   f"{o['model']} (v{o['version']}): it held the same bytes."
                   for o in r.get("also_forgotten") or [])
    refs = r.get("references_retired") or []
    return also + (f"\nRetired {len(refs)} cached retrain reference(s) that learned them."
                   if refs else "")


def _render_scrub(scrub: dict[str, Any] | None) -> str:
    if not scrub:
        return ""
    scan = "clean" if scrub["residual_scan"]["clean"] else "NOT CLEAN"
    return (f"\nScrubbed the shared weights: {scrub['steps']} steps in "
            f"{scrub['seconds']:.1f} s, v{scrub['from_version']} -> v{scrub['version']}; "
            f"purged {len(scrub['purged'])} artifact(s); residual scan {scan}.")


def cmd_learn(ctx: Context) -> int:
    from engine.image_jobs import learn_job

    a = ctx.args
    job = learn_job(ctx.workspace.root, model_name=a.model, class_name=a.class_name,
                    data_dir=a.data_dir, operator=ctx.operator, epochs=a.epochs)
    emit(ctx, run_with_progress(ctx, job),
         lambda r: f"Learned {r['class']} as class {r['index']} of {r['model']} "
                   f"(v{r['version']}); retained accuracy changed by "
                   f"{r['retained_change'] * 100:+.2f} points.")
    return 0
