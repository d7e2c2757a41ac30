"""A forget rule between its files, its registry row and the guard (docs/design.md section
6.2): the rule to train from the files given (checked before any model loads), and the guard
rules of stored rows (their classifiers read from the artifact store).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.guard.classifier import MIN_FORGET_EXAMPLES
from engine.guard.rules import RuleSpec, load_demo_rule, rule_from_files
from storage.errors import UnpromptError
from storage.workspace import Workspace


def rule_spec(name: str | None, forget_file: str | None, retain_file: str | None,
              demo: bool, description: str = "") -> RuleSpec:
    """The rule to train, checked for enough examples before any model loads."""
    if demo:
        spec = load_demo_rule()
        if name and name != spec.name:
            spec = replace(spec, name=name)
    elif not forget_file:
        raise UnpromptError("give --forget-file F (one prompt per line, or a JSON rule file) "
                            "or --demo")
    else:
        spec = rule_from_files(name or Path(forget_file).stem, forget_file, retain_file,
                               description)
    train = spec.split("forget", "train")
    if len(train) < MIN_FORGET_EXAMPLES:
        raise UnpromptError(f"the rule {spec.name!r} has only {len(train)} forget examples to "
                            f"train on; give at least {MIN_FORGET_EXAMPLES} prompts about the "
                            "topic")
    return spec


RULE_FIELDS = ("name", "threshold", "corruption", "corruption_params", "sigma",
               "classifier_artifact")


def rule_fields(row: Any) -> dict[str, Any]:
    """What a guard rule needs from its row, as plain data: the session can close before the
    encoder and the classifier load (a session is never held across slow work)."""
    return {c: getattr(row, c) for c in RULE_FIELDS}


def guard_rules(ws: Workspace, fields: list[dict[str, Any]], encoder: Any) -> list[Any]:
    from engine.guard.guard import GuardRule

    rules = []
    for f in fields:
        rule = GuardRule.from_row(with_terms(ws, f), ws.artifacts.get(f["classifier_artifact"]))
        expected = getattr(encoder, "name", None)
        if expected and rule.classifier.encoder_name != expected:
            raise UnpromptError(f"forget rule {f['name']!r} was trained on the encoder "
                                f"{rule.classifier.encoder_name}, not {expected}; retrain it")
        rules.append(rule)
    return rules


def with_terms(ws: Workspace, fields: dict[str, Any]) -> dict[str, Any]:
    """The row's fields with a data subject's terms (and pseudonyms) read back from their
    artifact (a person's rule keeps their name out of the registry: engine.guard.recall)."""
    import json

    from storage.rules import PSEUDONYMS_KEY, SCOPE_KEY, TERMS_ARTIFACT, VALUES_KEY

    params = dict(fields.get("corruption_params") or {})
    if TERMS_ARTIFACT not in params:
        return fields
    stored = json.loads(ws.artifacts.get(params.pop(TERMS_ARTIFACT)).decode())
    if isinstance(stored, list):  # terms only (a recall ablation's artifact)
        return {**fields, "corruption_params": {**params, SCOPE_KEY: stored}}
    return {**fields, "corruption_params": {**params, SCOPE_KEY: stored["terms"],
                                            PSEUDONYMS_KEY: stored[PSEUDONYMS_KEY],
                                            VALUES_KEY: stored.get(VALUES_KEY) or []}}
