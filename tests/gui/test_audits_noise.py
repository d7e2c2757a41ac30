"""The Audits screen with RMIA, intervals, verdicts and the band of two retrainings
(docs/design.md section 15), from a stored audit."""

from __future__ import annotations

import pytest

from gui.audit_charts_widget import BAND
from gui.audits_widget import AuditsWidget
from gui.context import AppContext
from tests.gui.audit_data import add_audit


@pytest.fixture()
def audited(workspace, seeded) -> int:  # noqa: ANN001
    return add_audit(workspace, statistics=True)


def test_rmia_intervals_verdicts_and_the_noise_band_are_shown(qtbot, ctx: AppContext,
                                                               audited: int) -> None:
    screen = AuditsWidget(ctx)
    qtbot.addWidget(screen)
    figures = screen.summary.figures()
    assert figures["RMIA AUC"] == ("0.580", "0.510")
    assert figures["Test accuracy (retained)"] == ("90.0%", "90.0%")
    verdicts = screen.summary.verdicts()
    assert verdicts["Test accuracy (retained)"] == "pass: gap -1.0 pp [-3.0, +1.0], floor 4.0 pp"
    assert verdicts["Relearn after 5 images"].startswith("FAIL: gap +20.0 pp")
    assert verdicts["Forget accuracy (train)"] == ""  # not in this audit's statistics
    details = screen.summary.details_label.text()
    assert "the audit FAILS: figures 1 pass, 1 fail" in details and "classes 0 pass" in details
    assert BAND in screen.relearn_chart.series
    panel = screen.membership
    panel.attack_box.setCurrentText("rmia")
    assert set(panel.roc_chart.series) == {"this model (AUC 0.58)",
                                           "retrain reference (AUC 0.51)", BAND, "chance"}
    assert BAND in panel.roc_log_chart.series
    panel.attack_box.setCurrentText("loss")
    panel.samples_box.setCurrentIndex(panel.samples_box.findData("all"))
    assert BAND in panel.roc_chart.series  # the twin's ROC of every attack


def test_an_audit_stored_before_the_statistics_shows_no_rmia_or_band(
        qtbot, ctx: AppContext, workspace, seeded) -> None:  # noqa: ANN001
    add_audit(workspace)
    screen = AuditsWidget(ctx)
    qtbot.addWidget(screen)
    assert "RMIA AUC" not in screen.summary.figures()
    assert "two retrainings" not in screen.summary.details_label.text()
    screen.membership.attack_box.setCurrentText("rmia")
    assert screen.membership.roc_chart.note.toPlainText().startswith("No RMIA")
    assert BAND not in screen.relearn_chart.series


def test_the_screen_defaults_to_the_engine_relearn_seeds() -> None:
    """Read from the engine's source: importing it would load torch into the GUI test."""
    import ast
    from pathlib import Path

    import engine
    import gui.audits_widget

    tree = ast.parse((Path(engine.__file__).parent / "audit" / "job.py").read_text())
    values = {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name)
              and isinstance(node.value, ast.Constant)}
    assert gui.audits_widget.RELEARN_SEEDS == values["RELEARN_SEEDS"]
    assert gui.audits_widget.PER_CLASS == values["PER_CLASS"]
