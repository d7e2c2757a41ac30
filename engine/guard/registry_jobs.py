"""Guard jobs against the registry: load a model, train / evaluate rules, answer prompts.

Like ``engine.image_jobs``, every job takes the workspace folder and plain options, so the
CLI, the tests and the GUI worker (``GUARD_JOBS``) call the same functions; the long ones are
generators that yield Progress, honour their CancelToken and return plain data. The worker's
``cache`` dict keeps the loaded language model between jobs. Bad input is refused before any
model loads and before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.guard.corruption import DEFAULT_CORRUPTION
from engine.guard.jobutil import check_training_options, rounded, scaled, stored_artifact
from engine.guard.rule_rows import guard_rules, rule_fields, rule_spec
from engine.guard.rules import RuleSpec
from engine.guard.selection import (
    LMChoice,
    choose_model,
    details,
    encoder_loading,
    loading_model,
    register,
)
from engine.jobs import CancelToken, Progress
from storage import rules as store
from storage.errors import UnpromptError
from storage.rule_audits import record_rule_audit, rule_requests
from storage.workspace import Workspace

GUARD_JOBS = {  # worker targets (engine/worker.py runs any 'module:function')
    "guard.load": "engine.guard.registry_jobs:load_model_job",
    "guard.rule_add": "engine.guard.registry_jobs:add_rule_job",
    "guard.rule_retrain": "engine.guard.registry_jobs:retrain_rule_job",
    "guard.rule_status": "engine.guard.registry_jobs:set_rule_status",
    "guard.rules": "engine.guard.registry_jobs:list_rules_job",
    "guard.eval": "engine.guard.registry_jobs:evaluate_rule_job",
    "guard.ask": "engine.guard.registry_jobs:ask_job",
}
Job = Generator[Progress, None, dict[str, Any]]


# -- jobs ---------------------------------------------------------------------------------

def load_model_job(workspace: str | Path, *, operator: str, model: str | None = None,
                   encoder: str | None = None, name: str | None = None, device: str = "auto",
                   cache: dict[str, Any] | None = None, cancel: CancelToken | None = None
                   ) -> Job:
    """`guard load`: load and check a language model and its encoder; register and select it."""
    ws = Workspace.open(workspace)
    try:
        choice = choose_model(ws, model, encoder)
        if name and name != choice.name:
            choice = LMChoice(name, choice.spec, choice.encoder, False)
        yield Progress(0.0, f"loading {choice.spec or 'the offline default model'}")
        lm = yield from loading_model(choice, cache, device)
        yield Progress(0.6, "loading the prompt-classifier encoder")
        enc = yield from encoder_loading(choice, 0.6)
        if cancel is not None:
            cancel.check()
        from engine.guard.lm import answer

        started = time.perf_counter()
        check = answer(lm, "What is the capital of France?", 8)
        with ws.sessions.begin() as session:
            store.register_language_model(session, choice.name, choice.spec, choice.encoder,
                                          details(lm, choice), operator)
            rules = [r.name for r in store.rules_of(session, store.language_model(
                session, choice.name), active_only=True)]
        yield Progress(1.0, f"{choice.name} loaded")
        return {**lm.describe(), "registered_as": choice.name, "spec": choice.spec,
                "encoder": getattr(enc, "name", choice.encoder), "active_rules": rules,
                "check_answer": check, "check_seconds": round(time.perf_counter() - started, 3)}
    finally:
        ws.close()


def add_rule_job(workspace: str | Path, *, operator: str, name: str | None = None,
                 forget_file: str | None = None, retain_file: str | None = None,
                 demo: bool = False, description: str = "", model: str | None = None,
                 corruption: str = DEFAULT_CORRUPTION, target_fpr: float = 0.01,
                 max_new_tokens: int = 24, max_evals: int = 7, max_known: int = 20,
                 seed: int = 0, device: str = "auto", cache: dict[str, Any] | None = None,
                 cancel: CancelToken | None = None) -> Job:
    """`guard rule add`: train a rule (classifier, calibration, strength) and register it."""
    check_training_options(max_evals=max_evals, max_new_tokens=max_new_tokens,
                           max_known=max_known, target_fpr=target_fpr)
    ws = Workspace.open(workspace)
    try:
        spec = rule_spec(name, forget_file, retain_file, demo, description)
        choice = choose_model(ws, model)
        _refuse_taken(ws, choice, spec.name)
        trained = yield from _train(ws, choice, spec, cache, device, cancel, corruption=corruption,
                                    corruption_params=None, target_fpr=target_fpr,
                                    max_new_tokens=max_new_tokens, max_evals=max_evals,
                                    max_known=max_known, seed=seed)
        with _classifier_stored(ws, trained["fields"]) as fields, \
                ws.sessions.begin() as session:
            llm = register(session, choice, trained["lm"], operator)
            row = store.add_rule(session, llm, spec.name, fields, operator)
            result = store.rule_dict(session, row)
        yield Progress(1.0, f"rule {spec.name!r} added")
        return {**result, "seconds": trained["seconds"]}
    finally:
        ws.close()


def refuse_person_rule(session: Any, row: Any) -> None:
    """A data subject's rule is built from their request's records and its corruption is
    the recall ablation (no strength to search): retraining it from examples would replace
    both."""
    from engine.guard.subject_audit_job import subject_scope_of

    scope = subject_scope_of(session, row)
    if scope is not None:
        raise UnpromptError(
            f"rule {row.name!r} enforces a data subject's erasure request and is built from "
            "the request's records, not retrained from examples; the request's exact "
            f"follow-up is `retrain {scope.get('model')}`, a fine-tune "
            "without the person")


def retrain_rule_job(workspace: str | Path, *, rule: str, operator: str,
                     model: str | None = None, target_fpr: float = 0.01,
                     max_new_tokens: int = 24, max_evals: int = 7, max_known: int = 20,
                     seed: int = 0, device: str = "auto", cache: dict[str, Any] | None = None,
                     cancel: CancelToken | None = None) -> Job:
    """Retrain a stored rule from its own examples (new model weights, encoder, settings)."""
    check_training_options(max_evals=max_evals, max_new_tokens=max_new_tokens,
                           max_known=max_known, target_fpr=target_fpr)
    ws = Workspace.open(workspace)
    try:
        choice = choose_model(ws, model)
        with ws.sessions() as session:
            row = store.get_rule(session, store.language_model(session, choice.name), rule)
            refuse_person_rule(session, row)
            spec = RuleSpec.from_dict(row.examples, row.name)
            corruption, params = row.corruption, dict(row.corruption_params)
        trained = yield from _train(ws, choice, spec, cache, device, cancel, corruption=corruption,
                                    corruption_params=params, target_fpr=target_fpr,
                                    max_new_tokens=max_new_tokens, max_evals=max_evals,
                                    max_known=max_known, seed=seed)
        with _classifier_stored(ws, trained["fields"]) as fields, \
                ws.sessions.begin() as session:
            row = store.get_rule(session, store.language_model(session, choice.name), rule)
            result = store.rule_dict(session, store.update_rule(session, row, fields, operator))
        return {**result, "seconds": trained["seconds"]}
    finally:
        ws.close()


def _refuse_taken(ws: Workspace, choice: LMChoice, rule: str) -> None:
    if choice.registered:
        with ws.sessions() as session:
            store.refuse_taken(session, store.language_model(session, choice.name), rule)


def _train(ws: Workspace, choice: LMChoice, spec: RuleSpec, cache: dict[str, Any] | None,
           device: str, cancel: CancelToken | None, **options: Any
           ) -> Generator[Progress, None, dict[str, Any]]:
    """Load and train; the row fields (with the classifier's bytes) and the loaded model."""
    from engine.guard.train import train_rule_job

    yield Progress(0.0, f"loading {choice.name}")
    if cancel is not None:
        cancel.check()
    lm = yield from loading_model(choice, cache, device)
    encoder = yield from encoder_loading(choice, 0.02)
    job = train_rule_job(lm, spec, encoder=encoder, cancel=cancel, **options)
    trained = yield from scaled(job, 0.05, 0.95)
    if cancel is not None:
        cancel.check()  # the last point where cancel takes effect: nothing stored yet
    return {"fields": trained.to_row(), "lm": lm, "seconds": trained.seconds}


@contextmanager
def _classifier_stored(ws: Workspace, fields: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The rule's fields with its classifier stored as an artifact, for the transaction that
    records the rule: if that fails, the classifier is purged again."""
    rest = {k: v for k, v in fields.items() if k != "classifier_bytes"}
    with stored_artifact(ws, fields["classifier_bytes"], "prompt-classifier") as sha:
        yield {**rest, "classifier_artifact": sha}


def set_rule_status(workspace: str | Path, *, rule: str, enabled: bool, operator: str,
                    request: int | str | None = None, model: str | None = None
                    ) -> dict[str, Any]:
    """`guard rule enable / disable`; enabling with a request executes that request."""
    ws = Workspace.open(workspace)
    try:
        with ws.sessions.begin() as session:
            return store.set_status(session, rule, enabled, operator, request, model)
    finally:
        ws.close()


def list_rules_job(workspace: str | Path, model: str | None = None) -> dict[str, Any]:
    """`guard rule list`: every rule (of one model when named)."""
    ws = Workspace.open(workspace)
    try:
        with ws.sessions() as session:
            return {"rules": store.list_rules(session, model)}
    finally:
        ws.close()


def evaluate_rule_job(workspace: str | Path, *, rule: str, operator: str,
                      model: str | None = None, request: int | str | None = None,
                      max_new_tokens: int = 24, general_sample: int = 24, device: str = "auto",
                      cache: dict[str, Any] | None = None, cancel: CancelToken | None = None
                      ) -> Job:
    """`guard eval RULE`: the section-5 figures, stored as an audit that verifies requests."""
    from engine.guard.evaluate import evaluate_rule
    from engine.guard.subject_audit_job import audit_person, corruption_facts, subject_scope_of

    ws = Workspace.open(workspace)
    try:
        with ws.sessions() as session:
            llm = store.resolve_language_model(session, model)
            row = store.get_rule(session, llm, rule)
            choice = LMChoice.of(llm)
            spec = RuleSpec.from_dict(row.examples, row.name)
            if request is not None:
                _check_verifiable(session, row, request)
            fields = rule_fields(row)
            person = subject_scope_of(session, row)
            corruption = corruption_facts(row)
        encoder = yield from encoder_loading(choice)
        guard_rule = guard_rules(ws, [fields], encoder)[0]
        yield Progress(0.0, f"loading {choice.name}")
        lm = yield from loading_model(choice, cache, device)
        figures = yield from scaled(evaluate_rule(
            lm, spec, guard_rule, encoder=encoder, max_new_tokens=max_new_tokens,
            general_sample=general_sample, cancel=cancel), 0.05, 0.5 if person else 0.98)
        metrics = {k: v for k, v in figures.items() if k != "prompts"}
        curves = {"prompts": figures["prompts"]}
        if person is not None:  # a person's rule: the TOFU / MUSE figures too (section 14)
            metrics["subject"], curves["subject"] = yield from scaled(audit_person(
                ws, person, lm, guard_rule, encoder, device, max_new_tokens, cancel), 0.5, 0.98,
                "people figures: ")
            metrics["subject"]["corruption"] = corruption
        with ws.sessions.begin() as session:
            row = store.get_rule(session, store.language_model(session, choice.name), rule)
            run, verified = record_rule_audit(
                session, row, metrics=rounded(metrics), curves=rounded(curves),
                config={"max_new_tokens": max_new_tokens, "general_sample": general_sample},
                operator=operator, request_id=request)
            run_id = run.id
        return {**metrics, "audit_run": run_id, "verified_requests": verified}
    finally:
        ws.close()


def _check_verifiable(session: Any, row: Any, request: int | str) -> None:
    """Refuse early (before minutes of answering) a request this audit cannot verify."""
    from storage.requests import get_request

    found = get_request(session, request)
    covered = {r.id for r in rule_requests(session, row)
               if r.status in ("executed", "verified")}
    if found.id not in covered:
        raise UnpromptError(f"request {found.id} is {found.status} and is not an executed "
                            f"request of rule {row.name!r}; enable the rule with --request "
                            f"{found.id} first")


def ask_job(workspace: str | Path, *, prompts: list[str], model: str | None = None,
            max_new_tokens: int = 64, unguarded: bool = False, device: str = "auto",
            cache: dict[str, Any] | None = None, cancel: CancelToken | None = None) -> Job:
    """`guard ask`: answer prompts through every active rule of the model."""
    from engine.guard.guard import Guard, guarded_answer

    if not prompts:
        raise UnpromptError("no prompts to answer (the file is empty)")
    if any(not p.strip() for p in prompts):
        raise UnpromptError("a prompt is empty; type a question")
    if max_new_tokens < 1:
        raise UnpromptError("--max-new-tokens must be at least 1")
    ws = Workspace.open(workspace)
    try:
        choice = choose_model(ws, model)
        guard = Guard()
        if choice.registered:
            with ws.sessions() as session:
                fields = [rule_fields(r) for r in store.rules_of(
                    session, store.language_model(session, choice.name), True)]
            if fields:
                guard.encoder = yield from encoder_loading(choice)
                guard.rules = guard_rules(ws, fields, guard.encoder)
        yield Progress(0.0, f"loading {choice.name}")
        lm = yield from loading_model(choice, cache, device)
        answers = []
        for i, prompt in enumerate(prompts):
            if cancel is not None:
                cancel.check()
            answers.append(guarded_answer(lm, guard, prompt, max_new_tokens, unguarded).to_dict())
            yield Progress((i + 1) / len(prompts), f"answered {i + 1}/{len(prompts)}")
        return {"model": choice.name, "rules": [r.name for r in guard.rules],
                "answers": answers}
    finally:
        ws.close()

