"""The Audits screen on a language model fine-tuned on people: a stored `guard eval` of a
person's rule shows its TOFU / MUSE figures and charts (docs/design.md section 14)."""

from __future__ import annotations

from typing import Any

from gui.audits_widget import AuditsWidget
from gui.context import AppContext
from storage import finetunes
from storage.models import AuditRun, ErasureRequest, utcnow

MODELS = ("fine-tuned", "guarded", "retain")


def _model(ratio: float, auc: float) -> dict[str, Any]:
    return {"forget_quality": 0.3 if ratio > 0.5 else 1e-6, "truth_ratio_mean": ratio,
            "probability": 0.8, "rouge_l": 0.9, "truth_ratio": 0.7, "model_utility": 0.79,
            "utility_vs_finetuned": 0.99, "mia_auc": {a: auc for a in ("loss", "zlib", "min_k",
                                                                       "min_k_pp")},
            "privleak": {a: 0.02 for a in ("loss", "zlib", "min_k", "min_k_pp")},
            "repetition": 0.05, "perplexity_under_finetuned": 12.5}


def _store_people_audit(workspace) -> int:  # noqa: ANN001
    """'crm' fine-tuned on two people, an executed request about one, and its audit."""
    with workspace.sessions.begin() as session:
        version = finetunes.record_finetune(
            session, name="crm", folder="/nowhere/v1", corpus={"format": "unprompt.people/1"},
            subjects={"A B": {"records": 2, "artifact": "a" * 64},
                      "C D": {"records": 2, "artifact": "c" * 64}},
            details={"base": "tiny"}, operator="ann")
        request = ErasureRequest(model_id=version.model_id, status="executed",
                                 scope={"model": "crm", "kind": "rule", "rule": "subject-1",
                                        "subject_records": "a" * 64, "records": 2},
                                 legal_basis="GDPR Art. 17", requested_by="ann",
                                 due_at=utcnow(), subject_hash="0" * 64, subject_salt="")
        session.add(request)
        session.flush()
        hist = {n: {"edges": [i / 10 for i in range(21)],
                    "counts": [4 if i == (1 if n == "fine-tuned" else 9) else 0
                               for i in range(20)]} for n in MODELS}
        run = AuditRun(version_id=version.id, kind="guard", request_id=request.id,
                       config={"rule": "subject-1", "rule_version": 1},
                       metrics={"subject": {
                           "models": {"fine-tuned": _model(0.1, 0.9),
                                      "guarded": _model(0.9, 0.55),
                                      "retain": _model(0.95, 0.5)},
                           "reference": {"model": "crm-retain", "version": 1, "people": 1,
                                         "left_out": 1},
                           "counts": {"forget": 4, "utility": 2, "never_trained": 4}}},
                       curves={"subject": {"truth_ratio_histograms": hist, "mia_roc": {
                           n: {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.6, 1.0]}
                           for n in MODELS}}})
        session.add(run)
        session.flush()
        return run.id


def test_a_people_audit_shows_its_figures_and_charts(qtbot, ctx: AppContext,
                                                      workspace) -> None:  # noqa: ANN001
    run_id = _store_people_audit(workspace)
    screen = AuditsWidget(ctx)
    qtbot.addWidget(screen)
    screen.select("crm")
    assert screen.audit["id"] == run_id
    assert screen.tabs.currentWidget() is screen.people and not screen.tabs.isTabEnabled(0)
    table = screen.people.table
    rows = {table.item(r, 0).text(): [table.item(r, c).text() for c in range(1, 4)]
            for r in range(table.rowCount())}
    assert rows["forget quality (KS p-value vs retain)"] == ["1.0e-06", "0.300", "0.300"]
    assert rows["Min-K%++ AUC"] == ["0.900", "0.550", "0.500"]
    assert "Retain reference: crm-retain v1" in screen.people.note.text()
    assert set(screen.people.truth_chart.series) == set(MODELS)
    assert set(screen.people.roc_chart.series) == set(MODELS)
    assert screen.status_label.text() == \
        "Pick the request of the person to audit (Request above)."
    screen.request_box.setCurrentIndex(1)
    assert screen.run_button.isEnabled()
