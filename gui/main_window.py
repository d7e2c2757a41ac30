"""The main window: navigation on the left, one screen at a time, the engine's status below."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gui.activity_widget import ActivityWidget
from gui.audits_widget import AuditsWidget
from gui.certificates_widget import CertificatesWidget
from gui.context import AppContext, os_user
from gui.demo import DemoBanner
from gui.errors import sentence
from gui.guard_widget import GuardWidget
from gui.models_widget import ModelsWidget
from gui.reports_widget import ReportsWidget
from gui.requests_widget import RequestsWidget
from gui.screen import Screen
from gui.serving_widget import ServingWidget
from gui.status_bar import EngineStatusBar
from gui.train_widget import TrainWidget

SCREENS: list[tuple[str, type[Screen]]] = [
    ("Models", ModelsWidget), ("Train", TrainWidget), ("Requests", RequestsWidget),
    ("Audits", AuditsWidget), ("Language-model guard", GuardWidget),
    ("Certificates", CertificatesWidget), ("Activity", ActivityWidget), ("Reports", ReportsWidget),
    ("Serving", ServingWidget),
]
FIRST_SCREEN = "Requests"


class MainWindow(QMainWindow):
    """Unprompt's window; screens share the ``AppContext``."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle(f"Unprompt — {ctx.workspace.root}")
        self.nav = QListWidget()
        self.nav.setObjectName("navigation")
        self.stack = QStackedWidget()
        self.screens: dict[str, Screen] = {}
        for name, screen_type in SCREENS:
            self.screens[name] = screen_type(ctx)
            self.stack.addWidget(self.screens[name])
            self.nav.addItem(name)
        self.operator_edit = QLineEdit()
        self.operator_edit.setPlaceholderText(os_user())
        self.operator_edit.setToolTip("Recorded as the actor of every action; "
                                      "empty means the OS user.")
        self.demo_banner = DemoBanner(ctx)  # first start: offers to build the demo
        self.setCentralWidget(self._central())
        self.setStatusBar(EngineStatusBar(ctx.engine))
        self.nav.currentRowChanged.connect(self._on_nav_currentRowChanged)
        self.operator_edit.textChanged.connect(ctx.set_operator)
        self.demo_banner.openScreenRequested.connect(self.show_screen)
        ctx.engine.workerCrashed.connect(self._on_engine_workerCrashed)
        self.show_screen(FIRST_SCREEN)
        self.resize(1280, 760)

    def _central(self) -> QWidget:
        side = QWidget()
        side.setFixedWidth(210)
        column = QVBoxLayout(side)
        column.setContentsMargins(10, 12, 0, 10)
        title = QLabel("Unprompt")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        title.setFont(font)
        self.nav.setStyleSheet("QListWidget#navigation::item { padding: 5px 6px; }")
        workspace = QLabel(f"Workspace: {self.ctx.workspace.root.name}")
        workspace.setToolTip(str(self.ctx.workspace.root))
        column.addWidget(title)
        column.addWidget(self.nav, 1)
        column.addWidget(QLabel("Operator"))
        column.addWidget(self.operator_edit)
        column.addWidget(workspace)
        main = QWidget()
        screens = QVBoxLayout(main)
        screens.setContentsMargins(0, 0, 0, 0)
        screens.addWidget(self.demo_banner)
        screens.addWidget(self.stack, 1)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(side)
        row.addWidget(main, 1)
        return central

    def screen(self, name: str) -> Screen:
        return self.screens[name]

    def show_screen(self, name: str) -> None:
        self.nav.setCurrentRow(list(self.screens).index(name))

    @property
    def engine_status(self) -> EngineStatusBar:
        return self.statusBar()

    def _on_nav_currentRowChanged(self, row: int) -> None:  # noqa: N802
        self.stack.setCurrentIndex(row)
        screen = self.stack.currentWidget()
        if isinstance(screen, Screen):
            screen.refresh()

    def _on_engine_workerCrashed(self, message: str) -> None:  # noqa: N802
        after = ("It could not be started again; restart Unprompt." if
                 self.ctx.engine.state == "failed" else
                 "The worker was restarted; queued jobs are kept and will run.")
        text = f"{sentence(message)}\n\n{after}"
        self.statusBar().showMessage(message, 15000)
        box = QMessageBox(QMessageBox.Icon.Warning, "Engine worker crashed", text,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): the engine keeps being polled while the message is shown
