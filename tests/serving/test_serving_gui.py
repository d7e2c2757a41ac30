"""The Serving screen and the Models screen's 'Try it' panel, over a real server and model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.forget import forget_job
from engine.jobs import run_job
from serving.try_it import try_image_job
from storage import auditlog
from storage.workspace import Workspace
from tests.serving.conftest import Served, tensor_body


@pytest.fixture()
def ctx(served: Served) -> Iterator:
    from engine.worker import EngineClient
    from gui.bridge import EngineBridge
    from gui.context import AppContext

    ws = Workspace.open(served.root)
    bridge = EngineBridge(EngineClient())  # never started: these screens read the registry
    yield AppContext(ws, bridge)
    bridge.close()
    ws.close()


def test_serving_screen_shows_live_versions_requests_and_tokens(qtbot, ctx, served: Served
                                                                ) -> None:  # noqa: ANN001
    from gui.serving_widget import ServingWidget

    widget = ServingWidget(ctx)
    qtbot.addWidget(widget)
    widget.port_box.setValue(served.server.port)
    for _ in range(3):
        served.client.post("/v2/models/demo/infer", json=tensor_body())
    widget.show()
    qtbot.waitUntil(lambda: widget.models.rowCount() and widget.models.record(0)["served"] == 3,
                    timeout=20000)
    row = widget.models.record(0)
    assert (row["name"], row["live_version"]) == ("demo", 1) and row["last_swap"]
    assert widget.endpoint_label.text() == f"Serving on {widget.endpoint}"
    secret = widget.create_token("shop", "chat")
    widget.secret_box.close()
    assert secret.startswith("upt_")
    names = [widget.tokens.record(i)["name"] for i in range(widget.tokens.rowCount())]
    assert names == ["tests", "shop"]
    widget.tokens_table.selectRow(1)
    widget.revoke_button.click()
    assert widget.tokens.record(1)["status"] == "revoked"
    with ctx.workspace.sessions() as session:
        actions = [e.action for e, _ in auditlog.entries_of(
            session, ("token.created", "token.revoked"))]
    assert actions == ["token.created", "token.created", "token.revoked"]
    widget.hide()
    assert not widget.timer.isActive()


def test_try_it_says_when_the_true_class_was_forgotten(qtbot, ctx, served: Served
                                                       ) -> None:  # noqa: ANN001
    from gui.try_it_widget import TryItPanel

    panel = TryItPanel(ctx)
    qtbot.addWidget(panel)
    panel.set_model("demo")
    before = try_image_job(served.root, model_name="demo", seed=4)
    panel.show_result(before)
    assert panel.bars.rowCount() >= 10 and "forgotten" not in panel.note_label.text()
    target = before["true_class"]
    run_job(forget_job(served.root, model_name="demo", classes=[target], operator="alice"))
    after = try_image_job(served.root, model_name="demo", index=before["index"])
    panel.show_result(after)
    assert after["version"] == 2 and after["true_class"] == target
    assert target not in after["probabilities"] and len(after["probabilities"]) == 9
    labels = [panel.bars.itemAtPosition(r, 0).widget().text() for r in range(9)]
    assert target not in labels
    assert f"This image shows class {target}, which was forgotten" in panel.note_label.text()
