"""The erasure-request queue: due dates, overdue and at-risk requests, create / approve /
reject (docs/design.md section 3)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelection, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from gui.context import AppContext
from gui.operators_dialog import OperatorsDialog
from gui.request_columns import COLUMNS, request_details, request_tone
from gui.request_dialog import DecisionDialog, RequestDialog
from gui.retrain_action import (
    confirm_retrain,
    decide_retrain,
    held_models,
    pending_models,
    plan_html,
    start_retrain,
)
from gui.screen import Screen
from gui.subject_action import is_subject_request, start_forget_subject
from gui.table_model import Record, RecordTableModel, record_table, sorted_proxy
from storage import operators
from storage import requests as reqs
from storage.erasure_kinds import describe
from storage.queries_gui import request_choices
from storage.settings import get_setting
from storage.subject_key import subject_key


class RequestsWidget(Screen):
    """The request queue with its lifecycle actions."""

    title = "Erasure requests"
    description = ("Requests are due 30 days after receipt (GDPR Art. 12(3)). Overdue requests "
                   "come first, in red; requests due within 7 days are marked at risk.")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._plans: dict[str, dict[str, Any]] = {}
        self._held: dict[str, dict[str, Any]] = {}
        self.model = RecordTableModel(COLUMNS, tone=request_tone)
        self.table = record_table(sorted_proxy(self.model, self))
        self.new_button = QPushButton("New request…")
        self.approve_button = QPushButton("Approve…")
        self.reject_button = QPushButton("Reject…")
        self.operators_button = QPushButton("Operators…")
        self.operators_button.setToolTip("Who may record, approve and reject requests; "
                                         "add an operator")
        self.retrain_button = QPushButton("Retrain model…")
        self.retrain_button.setToolTip("Retrain the request's model without every forgotten "
                                       "class, so that its requests become exact")
        self.held_button = QPushButton("Held retrain…")
        self.held_button.setToolTip("A retrain of the request's model fell below the accuracy "
                                    "margin: accept (promote) or reject it, with a reason")
        self.refresh_button = QPushButton("Refresh")
        self.summary = QLabel()
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._build_layout()
        self._connect()
        self.refresh()

    def _build_layout(self) -> None:
        row = QHBoxLayout()
        for button in (self.new_button, self.approve_button, self.reject_button,
                       self.retrain_button, self.held_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.summary)
        row.addWidget(self.operators_button)
        row.addWidget(self.refresh_button)
        self.body.addLayout(row)
        self.body.addWidget(self.plan_label)
        self.body.addWidget(self.table, 1)
        self.body.addWidget(self.details)

    def _connect(self) -> None:
        self.new_button.clicked.connect(self._on_new_button_clicked)
        self.approve_button.clicked.connect(self._on_approve_button_clicked)
        self.reject_button.clicked.connect(self._on_reject_button_clicked)
        self.retrain_button.clicked.connect(self._on_retrain_button_clicked)
        self.held_button.clicked.connect(self._on_held_button_clicked)
        self.operators_button.clicked.connect(self._on_operators_button_clicked)
        self.refresh_button.clicked.connect(self.refresh)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selectionChanged)
        self.ctx.registryChanged.connect(self.refresh)

    def refresh(self) -> None:
        """Reload the queue from the registry, keeping the selected request."""
        selected = self.selected_id()
        with self.ctx.workspace.sessions() as session:
            rows = reqs.list_requests(session)
        self._plans, self._held = pending_models(self.ctx), held_models(self.ctx)
        self.plan_label.setText(plan_html(list(self._plans.values()),
                                          list(self._held.values())))
        self.plan_label.setVisible(bool(self._plans or self._held))
        self.model.set_records(rows)
        self.table.resizeColumnsToContents()
        self.select(selected)
        self._update_summary(rows)
        self._on_table_selectionChanged()

    def selected_id(self) -> int | None:
        record = self._selected()
        return record["id"] if record else None

    def select(self, request_id: int | None) -> None:
        """Select the row of ``request_id`` (nothing when None or unknown)."""
        row = self.model.row_where("id", request_id)
        self.table.clearSelection()
        if row >= 0:
            proxy = self.table.model().mapFromSource(self.model.index(row, 0))
            self.table.selectRow(proxy.row())

    def _selected(self) -> Record | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.record(self.table.model().mapToSource(rows[0]).row())

    def _update_summary(self, rows: list[Record]) -> None:
        open_ = sum(r["status"] in reqs.OPEN_STATES for r in rows)
        overdue, at_risk = sum(r["overdue"] for r in rows), sum(r["at_risk"] for r in rows)
        self.summary.setText(f"{len(rows)} requests · {open_} open · {overdue} overdue · "
                             f"{at_risk} at risk")

    def _on_table_selectionChanged(self, *_args: QItemSelection) -> None:  # noqa: N802
        record = self._selected()
        status = record["status"] if record else ""
        self.approve_button.setEnabled(status == "received")
        self.reject_button.setEnabled(status in reqs.OPEN_STATES)
        model = (record or {}).get("scope", {}).get("model")
        waiting = bool(record and not record.get("exact_at") and record.get("suppressed_at"))
        self.retrain_button.setEnabled(waiting and model in self._plans
                                       and model not in self._held)
        self.held_button.setEnabled(waiting and model in self._held)
        self.details.setText(request_details(record) if record else
                             "Select a request to approve or reject it.")
        kind = record["erasure_kind"] if record else None
        self.details.setToolTip(f"{kind} erasure: {describe(kind)}" if kind else "")

    def _on_retrain_button_clicked(self) -> None:
        record = self._selected()
        plan = self._plans.get(record["scope"].get("model")) if record else None
        if plan is not None and confirm_retrain(self, plan):
            start_retrain(self.ctx, self, plan["model"], [record["id"]])

    def _on_held_button_clicked(self) -> None:
        record = self._selected()
        held = self._held.get(record["scope"].get("model")) if record else None
        if held is not None:
            decide_retrain(self.ctx, self, held)

    def _on_operators_button_clicked(self) -> None:
        dialog = OperatorsDialog(self.ctx, parent=self)
        dialog.exec()
        dialog.deleteLater()

    def _on_new_button_clicked(self) -> None:
        with self.ctx.workspace.sessions() as session:
            choices = request_choices(session)
            four_eyes = bool(get_setting(session, "four_eyes"))
            nobody = not operators.has_operators(session)
        if four_eyes and nobody:
            self._ask_for_first_operator()
            return
        created: list[int] = []
        dialog = RequestDialog(choices, lambda values: created.append(self._create(values)),
                               operator=self.ctx.operator, four_eyes=four_eyes, parent=self)
        dialog.exec()
        dialog.deleteLater()
        if created:
            self.ctx.registryChanged.emit()
            self.select(created[0])

    def _ask_for_first_operator(self) -> None:
        """Four-eyes on and no operator yet: a request could only be refused, so say why
        and offer the Operators dialog instead."""
        answer = QMessageBox.question(
            self, "Add the first operator",
            "Four-eyes is on, so whoever records a request must prove who they are with their "
            "own passphrase, and no operator is registered in this workspace yet.\n\n"
            "Add the first operator now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            self._on_operators_button_clicked()

    def _create(self, values: dict[str, Any]) -> int:
        key = subject_key(self.ctx.workspace.keys_dir)
        with self.ctx.workspace.sessions.begin() as session:
            return reqs.create_request(session, subject_key=key, **values).id

    def _on_approve_button_clicked(self) -> None:
        request_id = self.selected_id()

        def approve(values: dict[str, Any]) -> None:
            with self.ctx.workspace.sessions.begin() as session:
                reqs.approve(session, request_id, values["operator"], values["passphrase"])

        if self._decide(DecisionDialog(f"Approve request {request_id}", "Approve",
                                       self.ctx.operator, approve, parent=self)) \
                and is_subject_request(self.ctx, request_id):
            start_forget_subject(self.ctx, self, request_id)  # as `request approve` does

    def _on_reject_button_clicked(self) -> None:
        request_id = self.selected_id()

        def reject(values: dict[str, Any]) -> None:
            with self.ctx.workspace.sessions.begin() as session:
                reqs.reject(session, request_id, values["operator"], values["reason"],
                            values["passphrase"])

        self._decide(DecisionDialog(f"Reject request {request_id}", "Reject",
                                    self.ctx.operator, reject, reason=True, parent=self))

    def _decide(self, dialog: DecisionDialog) -> bool:
        """Run an approve / reject dialog; the registry changed if the operator confirmed."""
        accepted = bool(dialog.exec())
        dialog.deleteLater()
        if accepted:
            self.ctx.registryChanged.emit()
        return accepted
