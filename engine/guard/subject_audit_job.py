"""The people figures of `guard eval` on a person's forget rule (docs/design.md section 14):
the person and the retain reference are found in the registry, the models loaded, and
``engine.guard.subject_audit`` scores them."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from engine.guard.subject_audit import audit_sets, corruption_for, subject_audit
from engine.jobs import CancelToken, Progress
from storage import finetunes
from storage.rule_audits import rule_requests
from storage.workspace import Workspace


def subject_scope_of(session: Any, rule: Any) -> dict[str, Any] | None:
    """The scope of the request about one person that this rule enforces (None for a topic
    rule)."""
    scopes = [dict(r.scope) for r in rule_requests(session, rule)
              if "subject_records" in (r.scope or {})]
    return scopes[-1] if scopes else None


def corruption_facts(rule: Any) -> dict[str, Any]:
    """How a person's rule corrupts a flagged prompt, as its calibration recorded it: the
    family, the tokens it acts on, the strength and, for a calibrated rule, the answer
    losses it was calibrated on (engine.guard.subject_strength); no names."""
    cal = dict(rule.calibration or {})
    strength = {k: v for k, v in (cal.get("strength") or {}).items() if k != "trace"}
    return {"corruption": rule.corruption, "sigma": rule.sigma,
            "sigma_in_std": cal.get("sigma_in_std"),
            "token_scope": cal.get("token_scope", "all of the prompt's text"),
            **({"layers": cal["layers"]} if cal.get("layers") else {}),
            **({"value_bias": cal["value_bias"]} if cal.get("value_bias") else {}),
            **({"calibration": strength} if strength else {})}


def audit_person(ws: Workspace, scope: dict[str, Any], lm: Any, guard_rule: Any,
                 encoder: Any, device: str = "auto", max_new_tokens: int = 20,
                 cancel: CancelToken | None = None
                 ) -> Generator[Progress, None, tuple[dict[str, Any], dict[str, Any]]]:
    """Job: the TOFU / MUSE figures of the person of ``scope`` for the fine-tuned ``lm``
    behind ``guard_rule``, against the registry's retain model when there is one."""
    from engine.guard.guard import Guard
    from engine.guard.lm import load_language_model
    from engine.guard.subject_jobs import person_of, subject_records

    person = person_of(ws, scope["subject_records"])
    records = subject_records(ws, scope["model"])
    if all(r.person != person for r in records):  # the live version was trained without them
        return {"models": {}, "counts": {}, "reference": {
            "missing": "the live version of the model holds no records of this person "
                       "(fine-tuned without them), so there is nothing left to measure"}}, {}
    with ws.sessions() as session:
        reference = finetunes.retain_reference(
            session, finetunes.finetuned_model(session, scope["model"]), [person])
    retain = None
    if "folder" in reference:
        yield Progress(0.0, f"loading the retain model {reference['model']} "
                            f"v{reference['version']}")
        retain = load_language_model(reference["folder"], device)
        reference = {k: v for k, v in reference.items() if k != "folder"}
    pick = corruption_for(Guard([guard_rule], encoder))
    return (yield from subject_audit(lm, retain, pick, audit_sets(records, [person]),
                                     reference, max_new_tokens, cancel))
