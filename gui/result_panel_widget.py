"""The Models screen's result panel: a running job, then what a forget, an evaluation or a
learned class did (figures of the CLI contract, docs/design.md section 8)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from gui.accuracy_chart_widget import AccuracyChart
from gui.errors import sentence
from gui.model_tables import percent, short_hash
from gui.table_model import TONES, Column, Record, RecordTableModel, record_table
from storage.erasure_kinds import describe
from storage.scan_proofs import coverage_text

Fact = tuple[str, str, str]  # label, text, tooltip
RIGHT = Qt.AlignmentFlag.AlignRight

COLUMNS = [
    Column("Class", lambda r: r["name"]),
    Column("Before", lambda r: percent(r["before"]), sort=lambda r: r["before"] or -1.0,
           align=RIGHT),
    Column("After", lambda r: percent(r["after"]) + ("  (forgotten)" if r["forgotten"] else ""),
           sort=lambda r: r["after"], align=RIGHT, emphasis=lambda r: r["forgotten"]),
    Column("Change", lambda r: "" if r["before"] is None else
           f"{(r['after'] - r['before']) * 100:+.1f} pts", align=RIGHT),
]


def per_class_rows(before: dict[str, float] | None, after: dict[str, float],
                   forgotten: list[str]) -> list[Record]:
    """One row per class of either side; a forgotten class is at 0% after."""
    names = list(dict.fromkeys([*(before or {}), *after]))
    return [{"name": n, "before": (before or {}).get(n), "after": after.get(n, 0.0),
             "forgotten": n in forgotten} for n in names]


def scan_text(scan: dict[str, Any]) -> str:
    """The residual-scan verdict in words."""
    if scan.get("clean"):
        proven = f", {scan['files_proven']} proven when stored" if scan.get("files_proven") \
            else ""
        return (f"✔ clean ({scan['patterns']} removed tensors; {scan['files_scanned']} files "
                f"read{proven})")
    places = sorted({hit["file"] for hit in scan.get("hits", [])})
    return f"✘ NOT CLEAN: removed tensor bytes remain in {', '.join(places)}"


class ResultPanel(QFrame):
    """Shows one job at a time: its progress, then its result or its failure."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.progress = QProgressBar()
        self.facts = QFormLayout()
        self.facts.setHorizontalSpacing(14)
        self.model = RecordTableModel(COLUMNS, tone=lambda r: "muted" if r["forgotten"]
                                      else None)
        self.table = record_table(self.model)
        self.chart = AccuracyChart()
        self._fact_labels: dict[str, QLabel] = {}
        self._build_layout()
        self.setVisible(False)

    def _build_layout(self) -> None:
        left = QVBoxLayout()
        left.addWidget(self.title)
        left.addWidget(self.progress)
        left.addLayout(self.facts)
        left.addStretch(1)
        row = QHBoxLayout(self)
        row.addLayout(left, 5)
        row.addWidget(self.table, 0)
        row.addWidget(self.chart, 3)

    # what the Models screen calls ------------------------------------------------------
    def show_running(self, title: str) -> None:
        self._show(title, [], None)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)

    def show_progress(self, data: dict[str, Any]) -> None:
        fraction = data.get("fraction")
        if fraction is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * min(max(fraction, 0.0), 1.0)))
        self.progress.setFormat(data.get("message") or "%p%")

    def show_forget(self, r: dict[str, Any], request_id: int | None) -> None:
        """``r``: the result of ``engine.forget.forget_job``; ``request_id``: what it executed."""
        before, after = r["accuracy_before"], r["accuracy_after"]
        request = (f"request {request_id} executed" if request_id is not None else
                   "no request: this erasure cannot be certified")
        facts = [
            ("Versions", f"v{r['from_version']} → v{r['version']} (live)",
             f"v{r['from_version']} held the forgotten classes: it can no longer be loaded."),
            ("Erasure", f"{r['erasure_kind']}", describe(r["erasure_kind"])),
            ("Latency", f"{r['latency_ms']:.0f} ms", "New version, purge and residual scan."),
            ("Retained accuracy", f"{percent(before['retained'])} → "
                                  f"{percent(after['retained'])}", ""),
            ("Purged", _purged_text(r["purged"]), "\n".join(r["purged"])),
            ("Residual scan", scan_text(r["residual_scan"]), coverage_text(r["residual_scan"])),
            ("Request", request, ""),
        ]
        title = f"Forgot {', '.join(r['forgotten'])} from {r['model']}"
        self._show(title, facts, per_class_rows(before["per_class"], after["per_class"],
                                                r["forgotten"]))

    def show_evaluation(self, r: dict[str, Any]) -> None:
        facts = [("Retained accuracy", percent(r["retained"]), ""),
                 ("Erasure", r["erasure_kind"], describe(r["erasure_kind"]))]
        self._show(f"{r['model']} v{r['version']}: test accuracy per class", facts,
                   per_class_rows(None, r["per_class"], []))

    def show_learn(self, r: dict[str, Any]) -> None:
        before, after = r["accuracy_before"], r["accuracy_after"]
        facts = [("Versions", f"v{r['version'] - 1} → v{r['version']} (live)", ""),
                 ("New class", f"{r['class']} (index {r['index']}): "
                               f"{percent(r['train_accuracy'])} on its own images", ""),
                 ("Retained accuracy", f"{percent(before['retained'])} → "
                                       f"{percent(after['retained'])}", ""),
                 ("Time", f"{r['seconds']:.0f} s", "")]
        self._show(f"Learned {r['class']} in {r['model']}", facts,
                   per_class_rows(before["per_class"], after["per_class"], []))

    def show_retrain(self, r: dict[str, Any]) -> None:
        """``r``: the result of ``engine.retrain.retrain_job`` (promoted or held)."""
        from gui.retrain_action import retrain_summary

        if r.get("kind") == "llm":  # a fine-tuned language model: no classes to chart
            self._show(f"Retrained {r['model']} without the people's records", [
                ("Retrain", "promoted", retrain_summary(r)),
                ("Versions", f"v{r['from_version']} → v{r['version']} (live, exact)", ""),
                ("Residual scan", scan_text(r["residual_scan"]), "")], None)
            return
        live, new = r["accuracy_live"], r["accuracy_retrain"]
        facts = [("Retrain", r["status"].replace("_", " "), retrain_summary(r)),
                 ("Retained accuracy", f"{percent(r['retained_live'])} → "
                                       f"{percent(r['retained_retrain'])}", ""),
                 ("Time", f"{r['train_seconds']:.0f} s", "")]
        if r["status"] == "promoted":
            facts += [("Versions", f"v{r['from_version']} → v{r['version']} (live, exact)", ""),
                      ("Purged", _purged_text(r["purged"]), "\n".join(r["purged"])),
                      ("Residual scan", scan_text(r["residual_scan"]),
                       coverage_text(r["residual_scan"]))]
        self._show(f"Retrained {r['model']} without its forgotten classes", facts,
                   per_class_rows(live["per_class"], new["per_class"],
                                  list(new.get("forgotten") or {})))

    def show_failure(self, title: str, message: str) -> None:
        self._show(title, [("Error", sentence(message), "")], None)
        self.fact_label("Error").setStyleSheet(f"color: {TONES['danger'][1]};")

    def fact(self, label: str) -> str:
        """The text shown for ``label`` ('' when the panel does not show it)."""
        widget = self._fact_labels.get(label)
        return widget.text() if widget is not None else ""

    def fact_label(self, label: str) -> QLabel:
        return self._fact_labels[label]

    # internals -------------------------------------------------------------------------
    def _show(self, title: str, facts: list[Fact], rows: list[Record] | None) -> None:
        self.title.setText(title)
        self.progress.setVisible(False)
        self._set_facts(facts)
        self.table.setVisible(rows is not None)
        self.chart.setVisible(rows is not None)
        if rows is not None:
            self.model.set_records(rows)
            self.table.resizeColumnsToContents()
            header = self.table.horizontalHeader()
            self.table.setMinimumWidth(header.length() + self.table.verticalScrollBar()
                                       .sizeHint().width() + 2 * self.table.frameWidth())
            self.chart.set_bars([r["name"] for r in rows], [r["before"] for r in rows],
                                [r["after"] for r in rows],
                                {r["name"] for r in rows if r["forgotten"]})
        self.setVisible(True)

    def _set_facts(self, facts: list[Fact]) -> None:
        while self.facts.rowCount():
            self.facts.removeRow(0)
        self._fact_labels = {}
        for label, text, tooltip in facts:
            value = QLabel(text)
            value.setWordWrap(True)
            value.setToolTip(tooltip)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._fact_labels[label] = value
            self.facts.addRow(f"{label}:", value)


def _purged_text(purged: list[str]) -> str:
    if not purged:
        return "nothing to purge"
    shown = ", ".join(short_hash(sha) for sha in purged[:3])
    more = f" and {len(purged) - 3} more" if len(purged) > 3 else ""
    noun = "artifact" if len(purged) == 1 else "artifacts"
    return f"{len(purged)} {noun} overwritten and deleted ({shown}{more})"
