"""Screenshots of the Serving screen and the 'Try it' panel:
``python -m tests.serving.screenshots [FOLDER]`` (trains a tiny digits model; a minute)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]


def _wait(app, condition, limit: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def main(folder: Path) -> None:
    import httpx
    from PySide6.QtWidgets import QApplication

    from engine.forget import forget_job
    from engine.jobs import run_job
    from engine.worker import EngineClient
    from gui.bridge import EngineBridge
    from gui.context import AppContext
    from gui.models_widget import ModelsWidget
    from gui.serving_widget import ServingWidget
    from serving.server import BackgroundServer
    from serving.try_it import try_image_job
    from storage.workspace import Workspace
    from tests.image.conftest import train_tiny
    from tests.serving.conftest import new_token, tensor_body

    app = QApplication.instance() or QApplication(sys.argv)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        train_tiny(root, name="digits")
        token = new_token(root, "shop")
        new_token(root, "support-bot", "chat")
        before = try_image_job(root, model_name="digits", seed=2)
        with BackgroundServer(root) as server:
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(40):
                httpx.post(f"{server.url}/v2/models/digits/infer", json=tensor_body(),
                           headers=headers)
            run_job(forget_job(root, model_name="digits", classes=[before["true_class"]],
                               operator="alice"))
            time.sleep(0.1)
            for _ in range(12):
                httpx.post(f"{server.url}/v2/models/digits/infer", json=tensor_body(),
                           headers=headers)
            ws = Workspace.open(root)
            bridge = EngineBridge(EngineClient())
            ctx = AppContext(ws, bridge)
            serving = ServingWidget(ctx)
            serving.port_box.setValue(server.port)
            serving.resize(1000, 560)
            serving.show()
            _wait(app, lambda: serving.models.rowCount() and serving.models.record(0)["served"])
            serving.grab().save(str(folder / "serving.png"))
            serving.close()
        models = ModelsWidget(ctx)
        models.resize(1200, 760)
        models.show()
        models.try_it.show_result(try_image_job(root, model_name="digits",
                                                index=before["index"]))
        app.processEvents()
        models.grab().save(str(folder / "models-try-it.png"))
        models.close()
        bridge.close()
        ws.close()
    print(folder / "serving.png", folder / "models-try-it.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
