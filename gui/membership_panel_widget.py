"""The membership-inference view of an audit: ROC (linear and log-log) and the member vs
non-member score histograms of one attack, this model beside the retrain reference."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gui.audit_charts_widget import HistogramChart, RocChart

SAMPLES = {"forget": "forgotten classes: train vs test", "all": "all classes: train vs test"}


class MembershipPanel(QWidget):
    """Attack and sample choosers over four charts; ``show_audit`` draws a stored audit."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._audit: dict[str, Any] = {}
        self.roc_chart, self.roc_log_chart = RocChart(log=False), RocChart(log=True)
        self.model_histogram = HistogramChart("model")
        self.reference_histogram = HistogramChart("reference")
        self.attack_box, self.samples_box = QComboBox(), QComboBox()
        self.attack_box.addItems(["loss", "confidence", "entropy", "rmia"])
        self.attack_box.setToolTip("The threshold attacks (a higher score means 'member') and "
                                   "RMIA (Zarifzadeh et al. 2024; all classes, the second "
                                   "retrain reference as its reference model).")
        for key, text in SAMPLES.items():
            self.samples_box.addItem(text, key)
        choose = QHBoxLayout()
        for widget in (QLabel("Attack"), self.attack_box, QLabel("Samples"),
                       self.samples_box):
            choose.addWidget(widget)
        choose.addStretch(1)
        grid = QGridLayout()
        for i, chart in enumerate(self.charts()):
            grid.addWidget(chart, i // 2, i % 2)
        column = QVBoxLayout(self)
        column.addLayout(choose)
        column.addLayout(grid, 1)
        self.attack_box.currentIndexChanged.connect(self._draw)
        self.samples_box.currentIndexChanged.connect(self._draw)

    def charts(self) -> tuple[RocChart, RocChart, HistogramChart, HistogramChart]:
        return (self.roc_chart, self.roc_log_chart, self.model_histogram,
                self.reference_histogram)

    def show_audit(self, audit: dict[str, Any] | None) -> None:
        """Draw ``audit`` (None: empty charts), starting with its strongest attack."""
        self._audit = audit or {}
        if audit:
            self.attack_box.blockSignals(True)
            self.attack_box.setCurrentText(strongest_attack(audit.get("curves") or {}))
            self.attack_box.blockSignals(False)
        self._draw()

    def _draw(self) -> None:
        curves, metrics = self._audit.get("curves") or {}, self._audit.get("metrics") or {}
        attack = self.attack_box.currentText()
        forget_only = self.samples_box.currentData() == "forget"
        aucs = _aucs(curves, metrics, attack, forget_only)
        for chart in (self.roc_chart, self.roc_log_chart):
            chart.show_curves(curves, attack, forget_only, aucs)
        for chart in (self.model_histogram, self.reference_histogram):
            chart.show_curves(curves, attack, forget_only)


def strongest_attack(curves: dict[str, Any]) -> str:
    """The attack that best tells the forgotten training images from unseen ones."""
    aucs = (curves.get("distinguishability") or {}).get("model") or {"loss": 0.5}
    return max(aucs, key=lambda a: abs(aucs[a] - 0.5))


def _aucs(curves: dict[str, Any], metrics: dict[str, Any], attack: str,
          forget_only: bool) -> dict[str, float]:
    parts = {"model": metrics, "reference": metrics.get("reference") or {}}
    if attack == "rmia":
        return {w: (m.get("rmia") or {}).get("auc") for w, m in parts.items()}
    if forget_only:
        return {w: d.get(attack) for w, d in (curves.get("distinguishability") or {}).items()}
    return {w: ((m.get("threshold_attacks") or {}).get(attack) or {}).get("auc")
            for w, m in parts.items()}
