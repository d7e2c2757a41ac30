"""`verify` on a guard certificate whose rule a retrain retired (docs/design.md 18.1): still
valid, with the reason; a merely disabled rule still fails it."""

from __future__ import annotations

from reports.verify import _check_rule

CERTIFIED = {"name": "subject-1", "version": 1, "classifier_artifact": "c" * 64}


def test_a_rule_retired_by_a_retrain_is_no_failure() -> None:
    reasons: list[str] = []
    details: dict = {}
    _check_rule(CERTIFIED, {**CERTIFIED, "status": "retired"}, reasons, details)
    assert reasons == [] and details["rule"]["retired"] is True


def test_a_disabled_rule_still_fails_the_certificate() -> None:
    reasons: list[str] = []
    _check_rule(CERTIFIED, {**CERTIFIED, "status": "disabled"}, reasons, {})
    assert reasons == ["rule-disabled"]
