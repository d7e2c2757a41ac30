"""How the Models screen shows models, versions and classes (docs/design.md sections 3 and 4)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QTableView

from gui.formatting import local_date, local_time
from gui.table_model import Column, Record, RecordTableModel
from storage.erasure_kinds import describe

KINDS = {"image": "image", "backbone": "backbone", "llm": "language model"}
HASH_CHARS = 12
RIGHT = Qt.AlignmentFlag.AlignRight


def short_hash(sha: str | None) -> str:
    """The first characters of an artifact hash, as shown in tables ('' for none)."""
    return f"{sha[:HASH_CHARS]}…" if sha else ""


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def version_text(number: int | None) -> str:
    return f"v{number}" if number is not None else "—"


def lineage_text(versions: list[Record]) -> str:
    """'v1 (purged) → v2 (live)': each version after its parent."""
    return " → ".join(f"v{v['number']} ({v['status']})" for v in versions)


def artifact_hashes(version: Record) -> str:
    """Every artifact hash of a version, one per line (what 'Copy' puts on the clipboard)."""
    lines = [f"shared {version['shared_artifact']}"]
    lines += [f"class {label} {sha}" for label, sha in
              sorted(version["class_artifacts"].items(), key=lambda kv: int(kv[0]))]
    return "\n".join(lines)


def _class_hashes_tooltip(version: Record) -> str:
    return "\n".join(f"class {k}: {v}" for k, v in
                     sorted(version["class_artifacts"].items(), key=lambda kv: int(kv[0])))


def _learned(model: Record) -> str:
    if model["kind"] != "image":
        return ""
    learned = sum(c["status"] == "learned" for c in model["classes"])
    return f"{learned} of {len(model['classes'])} learned"


MODEL_COLUMNS = [
    Column("Model", lambda m: m["name"], emphasis=lambda m: True),
    Column("Kind", lambda m: KINDS.get(m["kind"], m["kind"])),
    Column("Mode", lambda m: m["mode"]),
    Column("Erasure", lambda m: m["erasure_kind"],
           tooltip=lambda m: describe(m["erasure_kind"]) if m["erasure_kind"] else ""),
    Column("Live", lambda m: version_text(m["live_version"]),
           sort=lambda m: m["live_version"] or 0),
    Column("Classes", _learned),
    Column("Dataset", lambda m: m["dataset"].get("dataset", ""),
           tooltip=lambda m: f"created {local_time(m['created_at'])}"),
]

VERSION_COLUMNS = [
    Column("Version", lambda v: version_text(v["number"]), sort=lambda v: v["number"],
           emphasis=lambda v: v["status"] == "live"),
    Column("Parent", lambda v: version_text(v["parent"]), sort=lambda v: v["parent"] or 0),
    Column("Status", lambda v: v["status"],
           tooltip=lambda v: {"purged": "Its artifacts of forgotten classes were overwritten "
                                        "and deleted; it can no longer be loaded.",
                              "superseded": "Replaced by a later version."}.get(v["status"],
                                                                                "")),
    Column("Shared artifact", lambda v: short_hash(v["shared_artifact"]),
           tooltip=lambda v: v["shared_artifact"]),
    Column("Classes", lambda v: str(len(v["class_artifacts"])),
           sort=lambda v: len(v["class_artifacts"]), tooltip=_class_hashes_tooltip,
           align=RIGHT),
    Column("Created", lambda v: local_date(v["created_at"]), sort=lambda v: v["created_at"],
           tooltip=lambda v: local_time(v["created_at"])),
]


def version_tone(version: Record) -> str | None:
    return {"live": "ok", "superseded": "muted", "purged": "muted"}.get(version["status"])


def class_columns(accuracy: dict[str, float]) -> list[Column]:
    """Columns of the class table; ``accuracy`` maps class names to the latest figures."""
    return [
        Column("#", lambda c: str(c["index"]), sort=lambda c: c["index"], align=RIGHT),
        Column("Class", lambda c: c["name"]),
        Column("Status", lambda c: c["status"], emphasis=lambda c: c["status"] == "forgotten"),
        Column("Forgotten in", lambda c: version_text(c["forgotten_in_version"])
               if c["status"] == "forgotten" else "",
               sort=lambda c: c["forgotten_in_version"] or 0),
        Column("Request", _request_text, tooltip=_request_tooltip),
        Column("Accuracy", lambda c: percent(accuracy.get(c["name"])),
               sort=lambda c: accuracy.get(c["name"], -1.0), align=RIGHT,
               tooltip=lambda c: "Test accuracy of the live version (at training or the "
                                 "latest evaluation)."),
    ]


def _request_text(entry: Record) -> str:
    if entry["status"] != "forgotten":
        return ""
    return str(entry["request"]) if entry["request"] else "none"


def _request_tooltip(entry: Record) -> str:
    if entry["status"] == "forgotten" and not entry["request"]:
        return "Forgotten without an erasure request: this erasure cannot be certified."
    return ""


def class_tone(entry: Record) -> str | None:
    return "muted" if entry["status"] == "forgotten" else None


def live_accuracy(model: Record) -> dict[str, float]:
    """Per-class accuracy recorded with the live version (training or learning), by name."""
    live = [v for v in model["versions"] if v["number"] == model["live_version"]]
    metrics: dict[str, Any] = live[0]["metrics"] if live else {}
    names = {str(c["index"]): c["name"] for c in model["classes"]}
    if "per_class" in metrics:  # training: keyed by label index
        return {names.get(k, k): v for k, v in metrics["per_class"].items()}
    return dict(metrics.get("accuracy_after", {}).get("per_class", {}))


def selected_record(table: QTableView, model: RecordTableModel) -> Record | None:
    """The record of the first selected row of ``table`` (through its sort proxy)."""
    rows = table.selectionModel().selectedRows()
    return model.record(table.model().mapToSource(rows[0]).row()) if rows else None


def select_records(table: QTableView, model: RecordTableModel, key: str,
                   values: list[Any]) -> None:
    """Select the rows whose ``record[key]`` is in ``values`` (nothing else)."""
    selection = table.selectionModel()
    selection.clearSelection()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for value in values:
        row = model.row_where(key, value)
        if row >= 0:
            selection.select(table.model().mapFromSource(model.index(row, 0)), flags)


def classes_hint(model: Record | None, names: list[str], learned: set[str], idle: bool) -> str:
    """The line under the class table: what to do next, or why Forget… is disabled."""
    if model is None:
        return "No model yet: train one (Train screen) or build the demo."
    if model["kind"] != "image":
        return f"{model['name']} is a {model['kind']} model: it has no classes to forget here."
    if not idle:
        return "A job of this screen is running; its result appears below."
    if not names:
        return "Select one or more learned classes, then press Forget…"
    gone = [n for n in names if n not in learned]
    if gone:
        return f"Already forgotten: {', '.join(gone)}. Select learned classes only."
    return f"Selected: {', '.join(names)}. Press Forget… to erase them."
