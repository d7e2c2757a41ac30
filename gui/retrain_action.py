"""The Retrain… action on the Requests and Models screens (docs/design.md section 18).

Asks for confirmation with the estimated time and the deadline risk, submits
``engine.retrain:retrain_job`` as a long job (progress and cancel on the Jobs screen like
training), and says what came of it: promoted (the requests are exact), or held for an
operator's decision because the retrained model fell below the accuracy margin. The
decision on a held retrain (``RetrainDecisionDialog``) is signed and logged as by the CLI;
an accepted one is submitted again, and promotes the stored model.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget

from engine.retrain import finish_decision
from gui.bridge import JobHandle
from gui.context import AppContext
from gui.errors import show_error
from storage.registry import get_model
from storage.retrain import decide_held, pending_requests
from storage.retrain_plan import (
    held_retrains,
    held_text,
    lm_retrain_text,
    plan_text,
    retrain_plan,
)

RETRAIN_JOB = "engine.retrain:retrain_job"


def pending_models(ctx: AppContext) -> dict[str, dict[str, Any]]:
    """``{model: plan row}`` for every model with requests waiting for a retrain."""
    with ctx.workspace.sessions() as session:
        return {row["model"]: row for row in retrain_plan(session)}


def held_models(ctx: AppContext) -> dict[str, dict[str, Any]]:
    """``{model: figures}`` for every retrain waiting for an operator's decision."""
    with ctx.workspace.sessions() as session:
        return held_retrains(session)


def decide_retrain(ctx: AppContext, parent: QWidget, held: dict[str, Any]) -> bool | None:
    """Ask for the decision on a held retrain; accepted, the retrain runs again and
    promotes. Returns True (accepted), False (rejected) or None (cancelled)."""
    from gui.retrain_decision_dialog import RetrainDecisionDialog

    def record(values: dict[str, Any], accept: bool) -> None:
        with ctx.workspace.sessions.begin() as session:
            decide_held(session, get_model(session, held["model"]), values["operator"],
                        values["passphrase"], accept, values["reason"])
        finish_decision(ctx.workspace)

    dialog = RetrainDecisionDialog(held, ctx.operator, record, parent)
    dialog.exec()
    decided = dialog.accepted_retrain
    dialog.deleteLater()
    if decided is not None:
        ctx.registryChanged.emit()
    if decided:
        start_retrain(ctx, parent, held["model"])
    return decided


def has_pending(ctx: AppContext, model_name: str) -> bool:
    with ctx.workspace.sessions() as session:
        return bool(pending_requests(session, get_model(session, model_name)))


def confirm_retrain(parent: QWidget, plan: dict[str, Any]) -> bool:
    """Ask before a long job: what it covers, how long it should take, the risk."""
    if plan.get("kind") == "llm":
        text = (f"Fine-tune {plan['model']} again from its base model without the records of "
                f"every person whose request waits?\n\n{plan_text(plan)}.\n\nThe retrained "
                "model replaces the live version; every earlier version's weights are "
                "destroyed, the people's forget rules are retired and the requests become "
                "exact.")
    else:
        text = (f"Retrain {plan['model']} without every forgotten class?\n\n"
                f"{plan_text(plan)}.\n\nThe retrained model replaces the live version only "
                "if its accuracy stays within the margin; every earlier version is then "
                "purged and the requests become exact.")
    answer = QMessageBox.question(parent, f"Retrain {plan['model']}", text,
                                  QMessageBox.StandardButton.Yes
                                  | QMessageBox.StandardButton.Cancel,
                                  QMessageBox.StandardButton.Yes)
    return answer == QMessageBox.StandardButton.Yes


def start_retrain(ctx: AppContext, parent: QWidget, model_name: str,
                  requests: list[int] | None = None) -> JobHandle:
    """Submit the retrain; its outcome is reported in a message box."""
    handle = ctx.submit_job(RETRAIN_JOB, {"model_name": model_name, "operator": ctx.operator,
                                          "requests": list(requests or [])}, kind="retrain")
    handle.succeeded.connect(lambda result: _on_retrain_succeeded(parent, result))
    handle.failed.connect(lambda message, _tb: show_error(parent, "Retrain failed", message))
    return handle


def retrain_summary(r: dict[str, Any]) -> str:
    if r.get("kind") == "llm":
        return lm_retrain_text(r).replace("\n", " ")
    live, new = r["retained_live"], r["retained_retrain"]
    if r["status"] != "promoted":
        return (f"The retrained {r['model']} reached {new:.1%} retained-class accuracy against "
                f"{live:.1%} live, more than the {r['margin']:.1%} margin below it, so it was "
                "not promoted. An operator decides with Held retrain… on the Requests "
                f"screen (or `retrain {r['model']} --accept --reason TEXT`, or --reject).")
    scan = "clean" if r["residual_scan"]["clean"] else "NOT clean"
    covered = ", ".join(f"#{i}" for i in r["covered"])
    return (f"{r['model']} v{r['from_version']} -> v{r['version']} (exact), retained-class "
            f"accuracy {live:.1%} -> {new:.1%}. Purged {len(r['purged'])} artifact(s) of "
            f"earlier versions; residual scan {scan}. Requests now exact: {covered}.")


def _on_retrain_succeeded(parent: QWidget, result: dict[str, Any]) -> None:
    title = "Retrain promoted" if result.get("status") == "promoted" else "Retrain held"
    QMessageBox.information(parent, title, retrain_summary(result))


def plan_html(plans: list[dict[str, Any]], held: list[dict[str, Any]] | None = None) -> str:
    """Deadline planning, one line per model waiting for a retrain, then one per retrain
    held for a decision (warnings in red, held retrains in bold)."""
    lines = []
    for plan in plans:
        text = html.escape(plan_text(plan))
        lines.append(f"<span style='color:#b3261e'><b>{text}</b></span>" if plan["late"]
                     else text)
    lines += [f"<b>{html.escape(held_text(row))}</b>" for row in held or []]
    return "<br/>".join(lines)
