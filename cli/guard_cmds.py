"""`guard load / rule add|list|enable|disable|retrain / ask / eval`: guarded language models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.context import Context, emit, run_with_progress, table
from cli.parsing import add_command, add_group
from storage.errors import NotFoundError, UnpromptError


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    guard = add_group(commands, parent, "guard", "guarded language models (forget rules)")
    load = add_command(guard, parent, "load", "load and check the language model", cmd_load)
    load.add_argument("--model", metavar="M",
                      help="hub name, model folder or GGUF file (default: offline SmolLM2)")
    load.add_argument("--encoder", metavar="E",
                      help="prompt-classifier encoder folder or hub name (default: MiniLM)")
    load.add_argument("--name", metavar="N", help="registry name of the model")
    _device(load)
    _register_rule_commands(add_group(guard, parent, "rule", "forget rules"), parent)
    ask = add_command(guard, parent, "ask", "answer prompts through the active rules", cmd_ask)
    ask.add_argument("prompt", nargs="?", metavar="PROMPT")
    ask.add_argument("--file", metavar="PROMPTS.txt", help="one prompt per line")
    ask.add_argument("--max-new-tokens", type=_positive_int, default=64, metavar="N")
    ask.add_argument("--unguarded", action="store_true",
                     help="also answer without the guard (unguarded_answer)")
    _model(ask)
    _device(ask)
    evaluate = add_command(guard, parent, "eval", "the audit figures of a forget rule",
                           cmd_eval)
    evaluate.add_argument("rule", metavar="RULE")
    evaluate.add_argument("--request", metavar="R", help="an executed request to verify")
    evaluate.add_argument("--max-new-tokens", type=_positive_int, default=24, metavar="N")
    evaluate.add_argument("--general-sample", type=_positive_int, default=24, metavar="K")
    _model(evaluate)
    _device(evaluate)


def _register_rule_commands(rule: argparse._SubParsersAction,
                            parent: argparse.ArgumentParser) -> None:
    add = add_command(rule, parent, "add", "train and register a forget rule", cmd_rule_add)
    add.add_argument("name", nargs="?", metavar="NAME")
    add.add_argument("--forget-file", metavar="F", help="prompts about the topic to forget")
    add.add_argument("--retain-file", metavar="F2", help="neighbouring prompts to keep")
    add.add_argument("--demo", action="store_true", help="the shipped rule 'harry-potter'")
    add.add_argument("--description", default="")
    add.add_argument("--target-fpr", type=float, default=0.01, metavar="P")
    _training_options(add)
    listing = add_command(rule, parent, "list", "forget rules with their status", cmd_rule_list)
    _model(listing)
    enable = add_command(rule, parent, "enable", "apply a rule again; --request executes it",
                         cmd_rule_enable)
    enable.add_argument("name", metavar="NAME")
    enable.add_argument("--request", metavar="R", help="an approved request for this rule")
    _model(enable)
    disable = add_command(rule, parent, "disable", "stop applying a rule", cmd_rule_disable)
    disable.add_argument("name", metavar="NAME")
    _model(disable)
    retrain = add_command(rule, parent, "retrain", "retrain a rule from its stored examples",
                          cmd_rule_retrain)
    retrain.add_argument("name", metavar="NAME")
    retrain.add_argument("--target-fpr", type=float, default=0.01, metavar="P")
    _training_options(retrain)


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=_positive_int, default=24, metavar="N")
    parser.add_argument("--max-evals", type=_positive_int, default=7, metavar="K",
                        help="budget of the strength search (evaluations)")
    parser.add_argument("--seed", type=int, default=0)
    _model(parser)
    _device(parser)


def _model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="M", help="registered language model or model spec "
                        "(default: the last one loaded)")


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def cmd_load(ctx: Context) -> int:
    from engine.guard.registry_jobs import load_model_job

    a = ctx.args
    job = load_model_job(ctx.workspace.root, operator=ctx.operator, model=a.model,
                         encoder=a.encoder, name=a.name, device=a.device)
    emit(ctx, run_with_progress(ctx, job),
         lambda r: f"{r['registered_as']}: {r['name']} ({r['parameters']:,} parameters, "
                   f"{r['source']}, {r['device']}) loaded in {r['load_seconds']:.1f} s; "
                   f"answers: {r['check_answer']!r}; active rules: "
                   f"{', '.join(r['active_rules']) or 'none'}.")
    return 0


def cmd_rule_add(ctx: Context) -> int:
    from engine.guard.registry_jobs import add_rule_job

    a = ctx.args
    if a.demo and (a.forget_file or a.retain_file):
        raise UnpromptError("--demo trains the shipped rule; leave out --forget-file and "
                            "--retain-file")
    if not a.demo and not a.name:
        raise UnpromptError("name the rule: guard rule add NAME --forget-file F")
    job = add_rule_job(ctx.workspace.root, operator=ctx.operator, name=a.name,
                       forget_file=a.forget_file, retain_file=a.retain_file, demo=a.demo,
                       description=a.description, model=a.model, target_fpr=a.target_fpr,
                       max_new_tokens=a.max_new_tokens, max_evals=a.max_evals, seed=a.seed,
                       device=a.device)
    emit(ctx, run_with_progress(ctx, job), _render_rule)
    return 0


def cmd_rule_retrain(ctx: Context) -> int:
    from engine.guard.registry_jobs import retrain_rule_job

    a = ctx.args
    job = retrain_rule_job(ctx.workspace.root, rule=a.name, operator=ctx.operator,
                           model=a.model, target_fpr=a.target_fpr,
                           max_new_tokens=a.max_new_tokens, max_evals=a.max_evals,
                           seed=a.seed, device=a.device)
    emit(ctx, run_with_progress(ctx, job), _render_rule)
    return 0


def _render_rule(r: dict[str, Any]) -> str:
    cal = r["calibration"]
    return (f"Rule {r['name']} v{r['version']} of {r['model']} is {r['status']}: "
            f"{r['examples']['forget']} forget / {r['examples']['retain']} retain examples; "
            f"threshold {r['threshold']:.4f}, flagging scores strictly above it (target FPR "
            f"{cal.get('target_fpr', 0):.1%}, {_calibrated_on(cal)} TPR {cal.get('tpr', 0):.1%}"
            f", FPR {cal.get('fpr', 0):.1%}); "
            f"{r['corruption']} sigma {r['sigma']:.4f}.{_fit_on(cal)}")


def _calibrated_on(cal: dict[str, Any]) -> str:
    """Where the stored calibration rates come from (rules trained before held-out
    calibration quote other heads' out-of-fold scores), written and augmented apart."""
    from reports.guard_text import prompt_count

    if cal.get("n_fit_positive") is not None:
        sources = cal.get("sources") or {}
        return (f"on {prompt_count(cal.get('n_positive'), sources.get('positive'), 'forget')} "
                f"and {prompt_count(cal.get('n_negative'), sources.get('negative'), 'other')} "
                "held out for calibration:")
    return "out-of-fold:"


def _fit_on(cal: dict[str, Any]) -> str:
    """' The classifier was fit on ...' and, for a split drawn from the same examples, why
    that calibration is weaker."""
    from reports.guard_text import fit_prompts, weaker_sentence

    if cal.get("n_fit_positive") is None:
        return ""
    return f" The classifier was fit on {fit_prompts(cal)}.{weaker_sentence(cal)}"


def cmd_rule_list(ctx: Context) -> int:
    from storage.rules import list_rules

    with ctx.workspace.sessions() as session:
        rows = list_rules(session, ctx.args.model)
    emit(ctx, {"rules": rows}, _render_list)
    return 0


def _render_list(result: dict[str, Any]) -> str:
    if not result["rules"]:
        return "No forget rules (add one with `guard rule add`)."
    rows = [[r["model"], r["name"], r["status"], r["version"], r["examples"]["forget"],
             f"{r['threshold']:.4f}", f"{r['sigma']:.4f}", r["request"] or "-"]
            for r in result["rules"]]
    return table(rows, ["model", "rule", "status", "version", "forget examples", "threshold",
                        "sigma", "request"])


def cmd_rule_enable(ctx: Context) -> int:
    return _set_status(ctx, True)


def cmd_rule_disable(ctx: Context) -> int:
    return _set_status(ctx, False)


def _set_status(ctx: Context, enabled: bool) -> int:
    from storage.rules import set_status

    a = ctx.args
    request = getattr(a, "request", None)
    with ctx.workspace.sessions.begin() as session:
        result = set_status(session, a.name, enabled, ctx.operator, request, a.model)
    note = f"; request {request} executed" if request else ""
    emit(ctx, result, lambda r: f"Rule {r['name']} of {r['model']} is {r['status']}{note}.")
    return 0


def cmd_ask(ctx: Context) -> int:
    from engine.guard.registry_jobs import ask_job

    a = ctx.args
    prompts = _prompts(a.prompt, a.file)
    job = ask_job(ctx.workspace.root, prompts=prompts, model=a.model,
                  max_new_tokens=a.max_new_tokens, unguarded=a.unguarded, device=a.device)
    answers = run_with_progress(ctx, job)["answers"]
    emit(ctx, answers if a.file else answers[0], _render_answers)
    return 0


def _prompts(prompt: str | None, file: str | None) -> list[str]:
    if (prompt is None) == (file is None):
        raise UnpromptError("give one PROMPT or --file PROMPTS.txt")
    if prompt is not None:
        return [prompt]
    path = Path(file)
    if not path.is_file():
        raise NotFoundError(f"no prompt file at {path}")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError:
        raise UnpromptError(f"the prompt file {path} is not UTF-8 text") from None
    prompts = [line for line in lines if line]
    if not prompts:
        raise UnpromptError(f"the prompt file {path} holds no prompts")
    return prompts


def _render_answers(result: dict[str, Any] | list[dict[str, Any]]) -> str:
    blocks = []
    for r in result if isinstance(result, list) else [result]:
        flag = f"flagged by {r['rule']} ({r['score']:.3f})" if r["flagged"] else \
            f"not flagged ({r['score']:.3f})"
        block = f"> {r['prompt']}\n[{flag}] {r['answer']}"
        if "unguarded_answer" in r:
            block += f"\n[unguarded] {r['unguarded_answer']}"
        blocks.append(block)
    return "\n\n".join(blocks)


def cmd_eval(ctx: Context) -> int:
    from engine.guard.registry_jobs import evaluate_rule_job

    a = ctx.args
    job = evaluate_rule_job(ctx.workspace.root, rule=a.rule, operator=ctx.operator,
                            model=a.model, request=a.request, max_new_tokens=a.max_new_tokens,
                            general_sample=a.general_sample, device=a.device)
    emit(ctx, run_with_progress(ctx, job), _render_eval)
    return 0


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _render_eval(r: dict[str, Any]) -> str:
    clf, know, side, lat = r["classifier"], r["knowledge"], r["side_effects"], r["latency"]
    n = clf.get("counts") or {}
    rows = [["classifier TPR (held-out forget)", f"{_pct(clf['tpr_forget'])} ({n.get('forget')})"],
            ["classifier FPR (held-out neighbour / general)",
             f"{_pct(clf['fpr_neighbour'])} / {_pct(clf['fpr_general'])} "
             f"({n.get('neighbour')} / {n.get('general')})"],
            ["knowledge before, held-out (known / evaluated)",
             f"{_pct(know['before'])} ({know['known']}/{know['evaluated']})"],
            ["knowledge after (on known)", f"{_pct(know['after'])} ({know['known']})"],
            ["ignorant reference", _pct(know["ignorant"])],
            ["held-out retain answers identical (unflagged)",
             f"{_pct(side['identical_unflagged'])} ({side.get('unflagged', '?')})"],
            ["classifier latency p50 / p95",
             f"{clf['latency_ms']['p50']:.1f} / {clf['latency_ms']['p95']:.1f} ms"],
            ["guard overhead on answer time", _pct(lat.get("overhead_share"))]]
    verified = ", ".join(map(str, r["verified_requests"])) or "none"
    return (f"Audit {r['audit_run']} of rule {r['rule']} (requests verified: {verified})\n"
            + table(rows, ["figure", "value"]) + _render_subject(r.get("subject")))


def _render_subject(subject: dict[str, Any] | None) -> str:
    """The TOFU / MUSE figures of a person's rule (docs/design.md section 14)."""
    if not subject:
        return ""
    from reports.subject_text import MODELS, counts_sentence, reference_sentence, subject_rows

    return ("\n\nThe person, as TOFU and MUSE measure it. " + reference_sentence(subject)
            + " " + counts_sentence(subject) + "\n"
            + table(subject_rows(subject), ["figure", *MODELS, "target"]))
