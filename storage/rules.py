"""Guarded language models and their forget rules in the registry (docs/design.md sections 3, 6).

A language model is a Model row of kind ``llm`` (its ``config`` holds the model spec and the
prompt-classifier encoder) with one ModelVersion that its audits attach to. A forget rule is a
ForgetRule row: examples, classifier artifact hash, threshold, corruption, strength sigma,
calibration figures and the strength-search trace. Every function runs inside the caller's
``with Session.begin()`` and writes the audit log for what it changes; nothing here touches
tensors (the engine trains, this module records).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog
from storage import requests as reqs
from storage.erasure_kinds import SUPPRESSED
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.models import ErasureRequest, ForgetRule, Model, ModelVersion, utcnow
from storage.registry import get_model
from storage.rule_audits import rule_audits, rule_requests

# corruption_params key of a data subject's rule: the names whose tokens the guard corrupts
# (engine.guard.scope). They name the person, so views show how many, never which.
SCOPE_KEY = "scope_terms"
RECALL_FAMILY = "recall_ablation"  # a data subject's corruption (engine/guard/recall.py)
# the default data subject's corruption (engine/guard/pseudonym.py), recall ablation where
# a prompt names none of the name's parts
PSEUDONYM_FAMILY = "pseudonym"
PERSON_FAMILIES = (PSEUDONYM_FAMILY, RECALL_FAMILY)  # the corruptions that act on a person
PSEUDONYMS_KEY = "pseudonyms"  # corruption_params key: the (name part, invented part) pairs
VALUES_KEY = "subject_values"  # corruption_params key: the person's unique values (biased)
VALUE_BIAS_KEY = "value_bias"  # corruption_params key: the bias on them, in nats
TERMS_ARTIFACT = "terms_artifact"  # corruption_params key: the artifact holding the terms
RULE_FIELDS = ("description", "examples", "classifier_artifact", "threshold", "corruption",
               "corruption_params", "sigma", "calibration", "trace")


# -- language models ----------------------------------------------------------------------

def register_language_model(session: Session, name: str, spec: str | None,
                            encoder: str | None, details: dict[str, Any],
                            operator: str) -> Model:
    """Record (or re-select) a language model; the newest loaded one is the default."""
    existing = session.scalars(select(Model).where(Model.name == name)).first()
    config = {"spec": spec, "encoder": encoder, "loaded_at": utcnow().isoformat()}
    if existing is None:
        model = Model(name=name, kind="llm", backbone=details.get("source", ""),
                      training_mode="guard", dataset_ref={}, config=config)
        session.add(model)
        session.flush()
        session.add(ModelVersion(model_id=model.id, number=1, metrics=details,
                                 erasure_kind=SUPPRESSED))
        action = "model.registered"
    else:
        model = _check_llm(existing)
        if (model.config.get("spec"), model.config.get("encoder")) != (spec, encoder):
            raise RefusedError(f"the language model {name!r} is registered with model "
                               f"{model.config.get('spec') or 'default'} and encoder "
                               f"{model.config.get('encoder') or 'default'}; choose another "
                               "name (--name)")
        model.config = config
        action = "guard.model_loaded"
    session.flush()
    auditlog.append(session, operator, action, {"model": name, "kind": "llm", "spec": spec,
                                                "encoder": encoder})
    return model


def _check_llm(model: Model) -> Model:
    if model.kind != "llm":
        raise UnpromptError(f"model {model.name!r} is not a language model (it is a "
                            f"{model.kind} model)")
    return model


def language_model(session: Session, name: str) -> Model:
    return _check_llm(get_model(session, name))


def language_models(session: Session) -> list[Model]:
    return list(session.scalars(select(Model).where(Model.kind == "llm")))


def current_language_model(session: Session) -> Model | None:
    """The most recently loaded language model, if any is registered."""
    found = language_models(session)
    return max(found, key=lambda m: (m.config.get("loaded_at") or "", m.id), default=None)


def resolve_language_model(session: Session, name: str | None = None) -> Model:
    """The named language model, or the most recently loaded one."""
    if name:
        return language_model(session, name)
    model = current_language_model(session)
    if model is None:
        raise NotFoundError("no language model is registered in this workspace; run "
                            "`guard load` first")
    return model


def find_by_spec(session: Session, spec: str | None, encoder: str | None) -> Model | None:
    """A registered language model with this spec and encoder."""
    return next((m for m in language_models(session)
                 if m.config.get("spec") == spec and m.config.get("encoder") == encoder), None)


# -- forget rules -------------------------------------------------------------------------

def get_rule(session: Session, model: Model, name: str) -> ForgetRule:
    rule = session.scalars(select(ForgetRule).where(ForgetRule.model_id == model.id,
                                                    ForgetRule.name == name)).first()
    if rule is None:
        known = ", ".join(r.name for r in rules_of(session, model)) or "none"
        raise NotFoundError(f"model {model.name!r} has no forget rule named {name!r} "
                            f"(rules: {known})")
    return rule


def rules_of(session: Session, model: Model, active_only: bool = False) -> list[ForgetRule]:
    query = select(ForgetRule).where(ForgetRule.model_id == model.id).order_by(ForgetRule.name)
    if active_only:
        query = query.where(ForgetRule.status == "active")
    return list(session.scalars(query))


def refuse_taken(session: Session, model: Model, name: str) -> None:
    """Refuse a rule name the model already uses (checked before any training)."""
    if not name.strip():
        raise UnpromptError("a forget rule needs a name")
    taken = session.scalars(select(ForgetRule).where(ForgetRule.model_id == model.id,
                                                     ForgetRule.name == name)).first()
    if taken is not None:
        raise RefusedError(f"model {model.name!r} already has a forget rule named {name!r}")


def add_rule(session: Session, model: Model, name: str, fields: dict[str, Any],
             operator: str) -> ForgetRule:
    """A new, active rule (version 1) from the engine's trained fields."""
    refuse_taken(session, model, name)
    rule = ForgetRule(model_id=model.id, name=name, status="active", version=1,
                      **_fields(fields))
    session.add(rule)
    session.flush()
    auditlog.append(session, operator, "rule.added", _log_payload(model, rule))
    return rule


def update_rule(session: Session, rule: ForgetRule, fields: dict[str, Any],
                operator: str) -> ForgetRule:
    """Replace a rule's training (a retrain or new examples): the version goes up by one."""
    before = {"version": rule.version, "classifier_artifact": rule.classifier_artifact,
              "threshold": rule.threshold, "sigma": rule.sigma}
    for key, value in _fields(fields).items():
        setattr(rule, key, value)
    rule.version, rule.updated_at = rule.version + 1, utcnow()
    session.flush()
    model = session.get(Model, rule.model_id)
    auditlog.append(session, operator, "rule.updated",
                    {**_log_payload(model, rule), "before": before})
    return rule


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in RULE_FIELDS if k not in fields]
    if missing:
        raise UnpromptError(f"a trained forget rule lacks {', '.join(missing)}")
    if len(fields["classifier_artifact"]) != 64:
        raise UnpromptError("a forget rule's classifier must be a stored artifact (sha256)")
    return {k: fields[k] for k in RULE_FIELDS}


def _log_payload(model: Model, rule: ForgetRule) -> dict[str, Any]:
    calibration = rule.calibration or {}
    return {"model": model.name, "rule": rule.name, "version": rule.version,
            "status": rule.status, "classifier_artifact": rule.classifier_artifact,
            "threshold": rule.threshold, "corruption": rule.corruption, "sigma": rule.sigma,
            "target_fpr": calibration.get("target_fpr"), "tpr": calibration.get("tpr"),
            "fpr": calibration.get("fpr"),
            "examples": {part: len(rule.examples.get(part) or [])
                         for part in ("forget", "retain", "general")}}


def disable_rule(session: Session, rule: ForgetRule, operator: str) -> ForgetRule:
    """Stop applying a rule; refused while it enforces an executed erasure request."""
    _refuse_retired(rule)
    if rule.status == "disabled":
        raise RefusedError(f"forget rule {rule.name!r} is already disabled")
    enforced = [r.id for r in rule_requests(session, rule)
                if r.status in ("executed", "verified", "certified")]
    if enforced:
        raise RefusedError(f"forget rule {rule.name!r} enforces erasure request(s) "
                           f"{', '.join(map(str, enforced))}; it cannot be disabled")
    rule.status, rule.updated_at = "disabled", utcnow()
    model = session.get(Model, rule.model_id)
    auditlog.append(session, operator, "rule.disabled",
                    {"model": model.name, "rule": rule.name, "version": rule.version})
    return rule


def enable_rule(session: Session, rule: ForgetRule, operator: str,
                request_id: int | str | None = None) -> ForgetRule:
    """Apply a rule again; with a request, the request is executed by this rule version."""
    _refuse_retired(rule)
    model = session.get(Model, rule.model_id)
    request = reqs.get_request(session, request_id) if request_id is not None else None
    if request is None and rule.status == "active":
        raise RefusedError(f"forget rule {rule.name!r} is already active")
    if request is not None:
        _check_request(session, request, model, rule)
    was = rule.status
    rule.status, rule.updated_at = "active", utcnow()
    auditlog.append(session, operator, "rule.enabled",
                    {"model": model.name, "rule": rule.name, "version": rule.version,
                     "was": was, "request": request.id if request else None})
    if request is not None:
        rule.request_id = request.id
        reqs.mark_executed(session, request, operator, SUPPRESSED,
                           execution_result(model, rule))
    return rule


def _refuse_retired(rule: ForgetRule) -> None:
    """A rule retired by a retrain (docs/design.md section 18) has no classifier any more."""
    if rule.status == "retired":
        raise RefusedError(f"forget rule {rule.name!r} was retired when a retrain without the "
                           "person's records made its request exact; its classifier was "
                           "purged, so it cannot be enabled or disabled again")


def set_status(session: Session, rule_name: str, enabled: bool, operator: str,
               request_id: int | str | None = None, model_name: str | None = None
               ) -> dict[str, Any]:
    """`guard rule enable / disable` on a rule of the named (or current) language model."""
    if request_id is not None and not enabled:
        raise UnpromptError("a request is executed by enabling a rule, not by disabling it")
    rule = get_rule(session, resolve_language_model(session, model_name), rule_name)
    if enabled:
        enable_rule(session, rule, operator, request_id)
    else:
        disable_rule(session, rule, operator)
    return rule_dict(session, rule)


def _check_request(session: Session, request: ErasureRequest, model: Model,
                   rule: ForgetRule) -> None:
    reqs.check_executable(session, request, "rule")
    scope = request.scope
    if scope.get("model") != model.name or scope.get("rule") != rule.name:
        raise RefusedError(f"request {request.id} covers rule {scope.get('rule')!r} of "
                           f"{scope.get('model')!r}, not rule {rule.name!r} of {model.name!r}")


def execution_result(model: Model, rule: ForgetRule) -> dict[str, Any]:
    """What a request executed by a rule records: the exact rule version in force."""
    calibration = rule.calibration or {}
    return {"method": "eco-guard", "model": model.name, "rule": rule.name,
            "rule_version": rule.version, "classifier_artifact": rule.classifier_artifact,
            "threshold": rule.threshold, "corruption": rule.corruption, "sigma": rule.sigma,
            "calibration": {k: calibration.get(k)
                            for k in ("target_fpr", "tpr", "fpr", "n_positive", "n_negative")}}


# -- plain views --------------------------------------------------------------------------

def rule_dict(session: Session, rule: ForgetRule) -> dict[str, Any]:
    model = session.get(Model, rule.model_id)
    audits = rule_audits(session, rule)
    return {"name": rule.name, "model": model.name, "status": rule.status,
            "version": rule.version, "description": rule.description,
            "examples": {part: len(rule.examples.get(part) or [])
                         for part in ("forget", "retain", "general")},
            "classifier_artifact": rule.classifier_artifact, "threshold": rule.threshold,
            "corruption": rule.corruption,
            "corruption_params": public_params(rule.corruption_params),
            "sigma": rule.sigma, "calibration": dict(rule.calibration),
            "trace": list(rule.trace), "request": rule.request_id,
            "requests": [r.id for r in rule_requests(session, rule)],
            "last_audit": audits[0].id if audits else None,
            "created_at": rule.created_at.isoformat(),
            "updated_at": rule.updated_at.isoformat() if rule.updated_at else None}


def public_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """A rule's corruption parameters as views show them: a subject's names counted."""
    shown = dict(params or {})
    for key in (SCOPE_KEY, PSEUDONYMS_KEY, VALUES_KEY):
        if isinstance(shown.get(key), list | tuple):
            shown[key] = len(shown[key])
    return shown


def list_rules(session: Session, model_name: str | None = None) -> list[dict[str, Any]]:
    """Every forget rule (of one language model, if named), by model and name."""
    models = [language_model(session, model_name)] if model_name else \
        sorted(language_models(session), key=lambda m: m.name)
    return [rule_dict(session, r) for m in models for r in rules_of(session, m)]
