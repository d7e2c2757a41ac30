"""An audit's verdict in words: the erasure kind, then the scorecard beside the retrain
reference (the section-5 figures an operator quotes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.table_model import TONES
from storage.erasure_kinds import APPROXIMATE, EXACT, describe

Metrics = dict[str, Any]
CHECK = " The figures below measure it against a model retrained without the class."


def _rate(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "—"


def _auc(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


def _seconds(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _rate_or_note(value: Any) -> str:
    return value if isinstance(value, str) else _rate(value)


def _salun(m: Metrics) -> Any:
    value = m.get("mia_efficacy")
    if m.get("mia_efficacy_degenerate") and isinstance(value, int | float):
        return f"{_rate(value)} (degenerate)"
    return value


def _best_attack(m: Metrics, key: str) -> Any:
    values = [a.get(key) for a in (m.get("threshold_attacks") or {}).values()]
    return max((v for v in values if isinstance(v, int | float)), default=None)


def _relearn(m: Metrics, shots: str) -> Any:
    return (m.get("relearn") or {}).get(shots)


# row title -> the figure's key in the audit's statistics (intervals and verdicts)
STAT_KEYS = {"Forget accuracy (train)": "scorecard.forget_accuracy",
             "Retain accuracy (train)": "scorecard.retain_accuracy",
             "Test accuracy (retained)": "scorecard.test_accuracy",
             "MIA-efficacy (top-1, label-free)": "mia_efficacy_top1",
             "Forget distinguishability AUC": "forget_distinguishability_auc",
             "Linear probe on the forgotten class": "linear_probe.forget_accuracy",
             "Relearn after 5 images": "relearn.5", "RMIA AUC": "rmia.auc",
             "RMIA TPR at 1% FPR": "rmia.tpr_at_1pct_fpr"}
VERDICT_WORDS = {"pass": "pass", "fail": "FAIL", "inconclusive": "inconclusive",
                 None: "not judged"}  # against the spread of two retrainings

# (row title, figure of one metrics object, format, what the row means)
ROWS: list[tuple[str, Callable[[Metrics], Any], Callable[[Any], str], str]] = [
    ("Forget accuracy (train)", lambda m: m["scorecard"].get("forget_accuracy"), _rate,
     "Training images of the forgotten classes classified correctly; 0% once forgotten."),
    ("Retain accuracy (train)", lambda m: m["scorecard"].get("retain_accuracy"), _rate,
     "Training images of the retained classes classified correctly."),
    ("Test accuracy (retained)", lambda m: m["scorecard"].get("test_accuracy"), _rate,
     "Unseen test images of the retained classes classified correctly."),
    ("MIA-efficacy (top-1, label-free)", lambda m: m.get("mia_efficacy_top1"), _rate,
     "Share of the forgotten training images a membership attack on the top-1 confidence "
     "and entropy over the remaining classes calls non-members; compare with the "
     "retrain reference."),
    ("MIA-efficacy (SalUn)", _salun, _rate_or_note,
     "The same attack on the true-label confidence (SalUn). A forgotten class has no "
     "output any more, so every forgotten image scores alike and the figure is "
     "degenerate (0% or 100% per class)."),
    ("Forget distinguishability AUC", lambda m: m.get("forget_distinguishability_auc"),
     _auc, "Can an attacker tell the forgotten class's training images from its test "
     "images? 0.5 means no."),
    ("Best attack AUC (all classes)", lambda m: _best_attack(m, "auc"), _auc,
     "The strongest threshold attack (loss, confidence, entropy) over every class."),
    ("TPR at 1% FPR (best attack)", lambda m: _best_attack(m, "tpr_at_1pct_fpr"), _rate,
     "Members found by the strongest attack while it wrongly accuses 1% of non-members."),
    ("Linear probe on the forgotten class",
     lambda m: (m.get("linear_probe") or {}).get("forget_accuracy"), _rate,
     "A linear classifier on the features without prompts: knowledge left in them."),
    ("Relearn after 5 images", lambda m: _relearn(m, "5"), _rate,
     "The forgotten class's test accuracy after an attacker trains it again on 5 images."),
    ("LiRA AUC", lambda m: (m.get("lira") or {}).get("auc"), _auc,
     "Offline likelihood-ratio attack with shadow models (when run)."),
    ("RMIA AUC", lambda m: (m.get("rmia") or {}).get("auc"), _auc,
     "Relative membership-inference attack (Zarifzadeh et al. 2024), offline, with the "
     "second retrain reference as its reference model."),
    ("RMIA TPR at 1% FPR", lambda m: (m.get("rmia") or {}).get("tpr_at_1pct_fpr"), _rate,
     "Members RMIA finds while it wrongly accuses 1% of non-members (omitted when the audit "
     "has fewer than 100 non-members)."),
    ("Run time", lambda m: m["scorecard"].get("run_time_s"), _seconds,
     "This model: the forget. Reference: retraining without the class."),
]


class AuditSummary(QWidget):
    """The erasure kind in plain words and the scorecard table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.erasure_label = QLabel()
        self.erasure_label.setWordWrap(True)
        self.erasure_label.setTextFormat(Qt.TextFormat.PlainText)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Figure", "This model", "Retrain reference",
                                              "Against two retrainings"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.erasure_label)
        layout.addWidget(self.table, 1)
        self.details_label = QLabel()
        self.details_label.setWordWrap(True)
        layout.addWidget(self.details_label)
        self.show_metrics(None)

    def show_audit(self, audit: dict[str, Any] | None) -> None:
        """Show a stored audit (``storage.audits.get_audit``'s dict; None: nothing)."""
        self.show_metrics((audit or {}).get("metrics"))
        self.details_label.setText(_details(audit) if audit else "")

    def show_metrics(self, metrics: Metrics | None) -> None:
        """Show one audit's metrics (None: nothing selected)."""
        if not metrics:
            self._set_erasure("No audit selected. Run one, or pick a stored audit above.",
                              "muted")
            self.table.setRowCount(0)
            return
        kind = metrics.get("erasure") or APPROXIMATE
        text = (metrics.get("erasure_statement")
                or f"{kind.capitalize()} erasure. {describe(kind)}{CHECK}")
        self._set_erasure(text, "ok" if kind == EXACT else "warning")
        reference = metrics.get("reference") or {}
        rows = [r for r in ROWS if r[1](metrics) is not None
                or (reference and r[1](reference) is not None)]
        self.table.setRowCount(len(rows))
        stats = (metrics.get("statistics") or {}).get("figures") or {}
        for i, (title, figure, fmt, meaning) in enumerate(rows):
            entry = stats.get(STAT_KEYS.get(title, ""), {})
            cells = [title, fmt(figure(metrics)),
                     fmt(figure(reference)) if reference else "not run", noise_cell(entry)]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(meaning)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, column, item)

    def verdicts(self) -> dict[str, str]:
        """Row title -> the 'against two retrainings' cell; for tests."""
        return {self.table.item(r, 0).text(): self.table.item(r, 3).text()
                for r in range(self.table.rowCount())}

    def figures(self) -> dict[str, tuple[str, str]]:
        """What the table shows: row title -> (this model, reference); for tests."""
        return {self.table.item(r, 0).text(): (self.table.item(r, 1).text(),
                                               self.table.item(r, 2).text())
                for r in range(self.table.rowCount())}

    def _set_erasure(self, text: str, tone: str) -> None:
        background, foreground = TONES[tone]
        self.erasure_label.setText(text)
        self.erasure_label.setStyleSheet(
            f"background: {background or 'transparent'}; color: {foreground}; "
            "padding: 6px 8px; border-radius: 3px;")


def noise_cell(entry: dict[str, Any]) -> str:
    """'pass: gap -1.0 pp [-3.0, +1.0], floor 4.0 pp' ('' for an audit without statistics);
    an omitted figure or one without a floor says 'not judged'."""
    if not entry:
        return ""
    word = VERDICT_WORDS[entry.get("verdict")]
    ci = entry.get("gap_ci")
    if "gap" not in entry or not ci:
        return word
    text = f"{word}: gap {entry['gap'] * 100:+.1f} pp [{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"
    return text + (f", floor {entry['floor'] * 100:.1f} pp" if "floor" in entry else "")


def verdict_text(metrics: Metrics | None) -> str:
    """The audit's verdict against the noise of retraining, in one sentence ('' without)."""
    verdict = ((metrics or {}).get("statistics") or {}).get("verdict")
    if not verdict:
        return ""
    counts, classes = verdict.get("counts") or {}, verdict.get("classes") or {}

    def words(c: dict[str, int]) -> str:
        return ", ".join(f"{c.get(k, 0)} {k.replace('_', ' ')}" for k in
                         ("pass", "fail", "inconclusive", "not_judged"))
    word = {"pass": "passes", "fail": "FAILS", "inconclusive": "is inconclusive",
            None: "is not judged (no second retrain reference)"}[verdict.get("verdict")]
    return (f" Against the spread of two retrainings the audit {word}: figures "
            f"{words(counts)}; classes {words(classes)}.")


def _details(audit: dict[str, Any]) -> str:
    """'Audit #2 of digits-demo v2: 1438 training and 359 test images, 22 s; ...'."""
    config = audit.get("config") or {}
    samples = config.get("samples") or {}
    text = (f"Audit #{audit['id']} of {audit['model']} v{audit['version']}: "
            f"{samples.get('train', '?')} training and {samples.get('test', '?')} test images, "
            f"{_seconds(config.get('seconds'))}.")
    if config.get("reference"):
        text += (" The retrain reference was reused from the cache." if
                 config.get("reference_cached") else
                 " The retrain reference was trained for this audit.")
    if audit.get("request"):
        text += f" Verifies request #{audit['request']}."
    return text + verdict_text(audit.get("metrics"))
