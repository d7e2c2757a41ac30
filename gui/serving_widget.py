"""The Serving screen: start the inference server, watch what it serves (section 13).

The server runs as its own process (`main.py serve`, so the GUI never imports torch); this
screen reads the registry for each model's live version and the server's ``/metrics`` (once
a second, without blocking) for requests served and the last swap. Tokens are created and
revoked here as with `token new` / `token revoke`.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, QTimer, QUrl
from PySide6.QtNetwork import QNetworkAccessManager, QNetworkReply, QNetworkRequest
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from gui.context import AppContext
from gui.errors import reporting_errors
from gui.model_tables import selected_record
from gui.screen import Screen
from gui.table_model import Column, RecordTableModel, record_table, sorted_proxy
from storage import tokens
from storage.queries_gui import model_overview

MAIN = Path(__file__).resolve().parents[1] / "main.py"
METRIC = re.compile(r'^(\w+)\{(.*)\} (\S+)$')  # route labels hold braces: /v2/models/{name}


def _field(key: str, title: str) -> Column:
    return Column(title, lambda record: str(record.get(key, "")))


MODEL_COLUMNS = [_field("name", "Model"), _field("kind", "Kind"),
                 _field("live_version", "Live version"), _field("served", "Requests served"),
                 _field("last_swap", "Last swap")]
TOKEN_COLUMNS = [_field("id", "Id"), _field("name", "Application"), _field("scope", "Scope"),
                 _field("prefix", "Starts with"), _field("status", "Status"),
                 _field("created_at", "Created (UTC)")]


class ServingWidget(Screen):
    """Serve the live models over HTTP; the server swaps versions as the registry changes."""

    title = "Serving"
    description = ("Serve every model's live version over HTTP (KServe v2 for images, OpenAI "
                   "chat for guarded language models). A forget reaches the server within "
                   "milliseconds, without a restart. Applications need a bearer token.")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.process: QProcess | None = None
        self.secret_box: QMessageBox | None = None
        self.stats: dict[str, dict[str, float]] = {}
        self.port_box = QSpinBox()
        self.port_box.setRange(1024, 65535)
        self.port_box.setValue(8321)
        self.start_button = QPushButton("Start server")
        self.endpoint_label = QLabel("Stopped.")
        self.models = RecordTableModel(MODEL_COLUMNS)
        self.models_table = record_table(sorted_proxy(self.models, self))
        self.tokens = RecordTableModel(TOKEN_COLUMNS)
        self.tokens_table = record_table(sorted_proxy(self.tokens, self))
        self.new_token_button = QPushButton("New token…")
        self.revoke_button = QPushButton("Revoke")
        self.network = QNetworkAccessManager(self)
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self._build_layout()
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.new_token_button.clicked.connect(self._on_new_token_button_clicked)
        self.revoke_button.clicked.connect(self._on_revoke_button_clicked)
        self.timer.timeout.connect(self._on_timer_timeout)
        self.network.finished.connect(self._on_network_finished)
        self.ctx.registryChanged.connect(self.refresh)
        self.refresh()

    def _build_layout(self) -> None:
        row = QHBoxLayout()
        row.addWidget(QLabel("Port"))
        row.addWidget(self.port_box)
        row.addWidget(self.start_button)
        row.addWidget(self.endpoint_label, 1)
        self.body.addLayout(row)
        self.body.addWidget(QLabel("Live versions"))
        self.body.addWidget(self.models_table, 2)
        tokens_row = QHBoxLayout()
        tokens_row.addWidget(QLabel("Tokens (only their hash is stored)"), 1)
        tokens_row.addWidget(self.new_token_button)
        tokens_row.addWidget(self.revoke_button)
        self.body.addLayout(tokens_row)
        self.body.addWidget(self.tokens_table, 1)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port_box.value()}"

    def refresh(self) -> None:
        with self.ctx.workspace.sessions() as session:
            models = [m for m in model_overview(session) if m["kind"] in ("image", "llm")]
            rows = tokens.list_tokens(session)
        for model in models:
            stats = self.stats.get(model["name"], {})
            swapped = stats.get("last_swap")
            model["served"] = int(stats.get("served", 0))
            model["last_swap"] = dt.datetime.fromtimestamp(swapped).strftime(
                "%H:%M:%S.%f")[:-3] if swapped else ""
        self.models.set_records(models)
        self.tokens.set_records([{**t, "created_at": t["created_at"][:19]} for t in rows])
        self.models_table.resizeColumnsToContents()
        self.tokens_table.resizeColumnsToContents()

    # the server process ------------------------------------------------------------------
    def start_server(self) -> None:
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.finished.connect(self._on_process_finished)
        self.process.start(sys.executable, [str(MAIN), "--workspace",
                                            str(self.ctx.workspace.root), "serve",
                                            "--port", str(self.port_box.value())])
        self.start_button.setText("Stop server")
        self.port_box.setEnabled(False)
        self.endpoint_label.setText(f"Starting on {self.endpoint}…")

    def stop_server(self) -> None:
        if self.process is not None:
            process, self.process = self.process, None
            process.finished.disconnect(self._on_process_finished)
            process.terminate()
            if not process.waitForFinished(5000):
                process.kill()
                process.waitForFinished(2000)
        self.start_button.setText("Start server")
        self.port_box.setEnabled(True)
        self.endpoint_label.setText("Stopped.")

    def _on_start_button_clicked(self) -> None:
        if self.process is None:
            self.start_server()
        else:
            self.stop_server()

    def _on_process_finished(self, code: int, _status: Any) -> None:
        output = bytes(self.process.readAll()).decode(errors="replace") if self.process else ""
        self.process = None
        self.stop_server()
        last = [line for line in output.splitlines() if line.strip()][-1:] or [f"exit {code}"]
        self.endpoint_label.setText(f"The server stopped: {last[0]}")

    def _on_timer_timeout(self) -> None:
        self.network.get(QNetworkRequest(QUrl(self.endpoint + "/metrics")))

    def _on_network_finished(self, reply: QNetworkReply) -> None:
        """A server on the port, started here or with `serve`, is shown either way."""
        ok = reply.error() == QNetworkReply.NetworkError.NoError
        text = bytes(reply.readAll()).decode(errors="replace") if ok else ""
        reply.deleteLater()
        if ok:
            self.endpoint_label.setText(f"Serving on {self.endpoint}")
            self.stats = parse_metrics(text)
            self.refresh()
        elif self.process is None:
            self.endpoint_label.setText(f"No server on {self.endpoint}; start it here or "
                                        "with `serve`.")

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.timer.start()
        self._on_timer_timeout()
        super().showEvent(event)

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.timer.stop()
        super().hideEvent(event)

    # tokens ------------------------------------------------------------------------------
    def _on_new_token_button_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "New token", "Application name:")
        if not ok:
            return
        scope, ok = QInputDialog.getItem(self, "New token", "Scope:", list(tokens.SCOPES), 0,
                                         False)
        if ok:
            self.create_token(name, scope)

    def create_token(self, name: str, scope: str) -> str | None:
        with reporting_errors(self, "Cannot create the token"):
            with self.ctx.workspace.sessions.begin() as session:
                secret, _row = tokens.create_token(session, name, scope, self.ctx.operator)
            self.refresh()
            self._show_secret(name, secret)
            return secret
        return None

    def _show_secret(self, name: str, secret: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "New token",
                          f"The token for {name}. It is shown only now; copy it:", parent=self)
        field = QLineEdit(secret)
        field.setReadOnly(True)
        field.selectAll()
        box.layout().addWidget(field, box.layout().rowCount(), 0, 1, -1)
        self.secret_box = box
        box.open()

    def _on_revoke_button_clicked(self) -> None:
        token = selected_record(self.tokens_table, self.tokens)
        if token is None:
            return
        with reporting_errors(self, "Cannot revoke the token"):
            with self.ctx.workspace.sessions.begin() as session:
                tokens.revoke_token(session, str(token["id"]), self.ctx.operator)
            self.refresh()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.stop_server()
        super().closeEvent(event)


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """Requests served (status below 400) and the last swap, per model, from /metrics."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = METRIC.match(line)
        if not match:
            continue
        name, labels, value = match.groups()
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        model = fields.get("model")
        if not model:
            continue
        stats = out.setdefault(model, {"served": 0.0})
        if name == "unprompt_requests_total" and int(fields.get("status", "500")) < 400:
            stats["served"] += float(value)
        elif name == "unprompt_last_swap_timestamp_seconds":
            stats["last_swap"] = float(value)
    return out
