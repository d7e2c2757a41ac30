"""The MIA figures a certificate judges and quotes: SalUn's, or the label-free top-1 one
where SalUn's is degenerate (a forgotten class has no logit column)."""

from __future__ import annotations

from typing import Any

from reports.audit_facts import figures, measured_residual
from reports.pdf_sections import residual_headline
from storage.audit_checks import TOP1_LABEL, check_audit

THRESHOLDS = {"mia_efficacy_gap": 0.05}


def _metrics(degenerate: bool) -> dict[str, Any]:
    own = {"mia_efficacy": 1.0, "mia_efficacy_degenerate": degenerate,
           "mia_efficacy_top1": 0.61, "forget_distinguishability_auc": 0.52}
    ref = {**own, "mia_efficacy": 0.0, "mia_efficacy_top1": 0.64}
    return {**own, "reference": ref}


def test_the_mia_check_judges_the_top1_figure_when_salun_is_degenerate() -> None:
    check = check_audit(_metrics(True), THRESHOLDS)["checks"][0]
    assert check["label"] == TOP1_LABEL and check["passed"] is True
    assert abs(check["measured"] - 0.03) < 1e-9
    salun = check_audit(_metrics(False), THRESHOLDS)["checks"][0]
    assert salun["measured"] == 1.0 and salun["passed"] is False
    old = {k: v for k, v in _metrics(True).items() if k != "mia_efficacy_top1"}
    assert check_audit(old, THRESHOLDS)["checks"][0]["measured"] == 1.0  # no top-1: SalUn


def test_the_residual_and_figures_carry_both_figures_and_the_flag() -> None:
    residual = measured_residual(_metrics(True))
    assert residual["mia_efficacy_top1"] == 0.61
    assert residual["reference_mia_efficacy_top1"] == 0.64
    assert residual["mia_efficacy_degenerate"] is True
    assert figures(_metrics(True))["mia_efficacy_degenerate"] is True


def test_the_headline_quotes_the_top1_figure_not_a_degenerate_salun_one() -> None:
    text = residual_headline(measured_residual(_metrics(True)))
    assert text == "label-free MIA efficacy 61.0% (reference 64.0%)"
    assert residual_headline(measured_residual(_metrics(False))) == (
        "MIA efficacy 100.0% (reference 0.0%)")
