"""The Audits screen over stored audits; running one with a stand-in audit job."""

from __future__ import annotations

import pytest

import gui.audits_widget
from gui.audits_widget import AuditsWidget
from gui.context import AppContext
from tests.gui.audit_data import add_audit


@pytest.fixture()
def audited(workspace, seeded) -> int:  # noqa: ANN001
    return add_audit(workspace)


def test_a_stored_audit_shows_its_figures_and_every_chart(qtbot, ctx: AppContext,
                                                          audited: int) -> None:  # noqa: ANN001
    screen = AuditsWidget(ctx)
    qtbot.addWidget(screen)
    assert screen.model_box.currentText() == "fashion-vit"
    assert screen.audit_box.currentData() == audited and screen.audit["id"] == audited
    assert screen.summary.erasure_label.text().startswith("Approximate erasure")
    figures = screen.summary.figures()
    assert figures["Forget accuracy (train)"] == ("0.0%", "0.0%")
    assert figures["Relearn after 5 images"] == ("80.0%", "60.0%")
    assert "LiRA AUC" not in figures  # not run
    assert figures["MIA-efficacy (top-1, label-free)"] == ("62.0%", "62.0%")
    assert figures["MIA-efficacy (SalUn)"] == ("100.0% (degenerate)",) * 2
    assert set(screen.accuracy_chart.series) == {"before", "after", "retrain reference",
                                                 "forgotten"}
    assert set(screen.relearn_chart.series) == {"this model", "retrain reference"}
    assert set(screen.membership.roc_chart.series) == {"this model (AUC 0.55)",
                                            "retrain reference (AUC 0.55)", "chance"}
    screen.membership.samples_box.setCurrentIndex(screen.membership.samples_box.findData("all"))
    assert "this model (AUC 0.52)" in screen.membership.roc_log_chart.series
    assert set(screen.membership.reference_histogram.series) == {"members (train)",
                                                      "non-members (test)"}
    assert "Verifies" not in screen.summary.details_label.text()
    assert screen.run_button.isEnabled()
    screen.lira_spin.setValue(1)
    assert not screen.run_button.isEnabled()
    assert screen.status_label.text() == "LiRA needs at least 2 shadow models."


def test_choosing_a_request_shows_its_model(qtbot, ctx: AppContext, audited: int,
                                            seeded: dict[str, int]) -> None:  # noqa: ANN001
    screen = AuditsWidget(ctx)
    qtbot.addWidget(screen)
    executed = seeded["executed"]  # forgot 't-shirt' of fashion-vit
    assert screen.request_box.itemText(1) == f"#{executed} · fashion-vit (executed)"
    screen.request_box.setCurrentIndex(1)
    assert screen.model_box.currentText() == "fashion-vit"
    assert screen.audit["id"] == audited


def test_a_model_with_nothing_forgotten_cannot_be_audited(qtbot, ctx: AppContext,
                                                          seeded) -> None:  # noqa: ANN001
    screen = AuditsWidget(ctx)
    qtbot.addWidget(screen)
    assert screen.audit is None and screen.audit_box.currentText() == "no audit yet"
    assert not screen.run_button.isEnabled()
    assert "has no forgotten class" in screen.status_label.text()
    assert screen.summary.table.rowCount() == 0
    assert screen.relearn_chart.series == {}  # an empty chart with a note


def test_running_an_audit_shows_the_new_run(qtbot, engine_ctx: AppContext, audited: int,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(gui.audits_widget, "AUDIT_JOB",
                        "tests.gui.audit_data:fake_audit_job")
    screen = AuditsWidget(engine_ctx)
    qtbot.addWidget(screen)
    screen.relearn_check.setChecked(False)
    assert screen.audit_options() == {"model_name": "fashion-vit", "reference": True,
                                      "relearn": False, "lira": 0, "per_class": 1000,
                                      "relearn_epochs": 10, "relearn_seeds": 5}
    screen.run_button.click()
    assert not screen.run_button.isEnabled() and screen.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: screen.audit and screen.audit["id"] != audited, timeout=20_000)
    assert screen.status_label.text() == "The audit is stored and shown below."
    assert screen.audit_box.count() == 2 and screen.run_button.isEnabled()
    assert "not run" in screen.summary.figures()["Forget accuracy (train)"]


def test_a_cancelled_audit_stores_nothing(qtbot, engine_ctx: AppContext, audited: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(gui.audits_widget, "AUDIT_JOB", "tests.gui.audit_data:slow_audit_job")
    screen = AuditsWidget(engine_ctx)
    qtbot.addWidget(screen)
    screen.run_button.click()
    qtbot.waitUntil(lambda: screen.status_label.text().startswith("Auditing: scoring"),
                    timeout=20_000)
    screen.cancel_button.click()
    qtbot.waitUntil(lambda: screen._job is None, timeout=20_000)
    assert screen.status_label.text() == "The audit was cancelled; nothing was stored."
    assert screen.audit_box.count() == 1 and screen.audit["id"] == audited
