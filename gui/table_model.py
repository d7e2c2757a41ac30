"""A read-only table model over a list of plain dicts (requests, log entries, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

Record = dict[str, Any]
Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1

# Row tones: (background, text colour); light enough for black text, readable in print.
TONES = {
    "danger": ("#fbe3e1", "#8a1c12"),
    "warning": ("#fff3d1", "#7a4d00"),
    "ok": ("#e3f4e6", "#1d5e2a"),
    "muted": ("", "#6b6b6b"),
}


@dataclass(frozen=True)
class Column:
    """How one column shows a record: its text, optional tooltip and sort key."""

    title: str
    text: Callable[[Record], str]
    sort: Callable[[Record], Any] | None = None
    tooltip: Callable[[Record], str] | None = None
    align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft
    emphasis: Callable[[Record], bool] | None = None


class RecordTableModel(QAbstractTableModel):
    """Rows are records; ``tone(record)`` names a row colour in ``TONES`` (or None)."""

    def __init__(self, columns: list[Column],
                 tone: Callable[[Record], str | None] | None = None) -> None:
        super().__init__()
        self._columns, self._tone = columns, tone or (lambda _r: None)
        self._records: list[Record] = []

    def set_records(self, records: list[Record]) -> None:
        self.beginResetModel()
        self._records = list(records)
        self.endResetModel()

    def record(self, row: int) -> Record:
        return self._records[row]

    def records(self) -> list[Record]:
        return list(self._records)

    def row_where(self, key: str, value: Any) -> int:
        """The row whose ``record[key] == value``, or -1."""
        return next((i for i, r in enumerate(self._records) if r.get(key) == value), -1)

    def refresh_tones(self) -> None:
        if self._records:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._records) - 1, len(self._columns) - 1))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self._columns[section].title
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record, column = self._records[index.row()], self._columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(record)
        if role == SORT_ROLE:
            return (column.sort or column.text)(record)
        if role == RECORD_ROLE:
            return record
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip is not None:
            return column.tooltip(record)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(column.align | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and column.emphasis and column.emphasis(record):
            font = QFont()
            font.setBold(True)
            return font
        return self._tone_data(record, role)

    def _tone_data(self, record: Record, role: int) -> Any:
        tone = TONES.get(self._tone(record) or "")
        if tone is None:
            return None
        background, foreground = tone
        if role == Qt.ItemDataRole.BackgroundRole and background:
            return QBrush(QColor(background))
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor(foreground))
        return None


def record_table(model: QAbstractItemModel, multi: bool = False) -> QTableView:
    """A read-only, sortable table of whole rows, as every screen shows records."""
    table = QTableView()
    table.setModel(model)
    table.setSortingEnabled(True)
    table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection if multi
                           else QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
    table.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft
                                                 | Qt.AlignmentFlag.AlignVCenter)
    table.horizontalHeader().setStretchLastSection(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.setWordWrap(False)
    return table


def sorted_proxy(model: RecordTableModel, parent: QObject) -> QSortFilterProxyModel:
    """A proxy that sorts by each column's sort key and filters on every column."""
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setFilterKeyColumn(-1)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    return proxy
