"""`learn` never brings back a class whose erasure is recorded (docs/design.md section 3.4):
not under its own name, and not as its images under another name. Whether the request is
still suppressed or already exact after a retrain does not matter: the class is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.erased_images import refuse_erased_images
from engine.image_jobs import cached_reference, learn_job
from engine.jobs import run_job
from storage.errors import RefusedError
from storage.models import ModelVersion
from storage.workspace import Workspace
from tests.image.test_learn import _digit_pngs


def _versions(root: Path) -> int:
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            return session.query(ModelVersion).count()
    finally:
        ws.close()


def test_learn_refuses_a_forgotten_class_by_name_and_by_its_images(forgotten: Path,
                                                                   tmp_path: Path) -> None:
    before = _versions(forgotten)
    with pytest.raises(RefusedError, match=r"class '7' \(request #1 executed\) was forgotten"):
        run_job(learn_job(forgotten, model_name="demo", class_name="7",
                          data_dir=str(_digit_pngs(tmp_path / "a", 7, 5)), operator="a"))
    with pytest.raises(RefusedError, match=r"5 of the 5 images are images of class '3' "
                                           r"\(request #2 executed\)"):
        run_job(learn_job(forgotten, model_name="demo", class_name="three again",
                          data_dir=str(_digit_pngs(tmp_path / "b", 3, 5)), operator="a"))
    assert _versions(forgotten) == before  # nothing learned


def test_images_of_a_kept_class_are_not_taken_for_erased_ones(forgotten: Path,
                                                              tmp_path: Path) -> None:
    from engine.image_jobs import _class_images
    from engine.model_store import load_live

    ws = Workspace.open(forgotten)
    try:
        _, info = load_live(ws, "demo")
        data = cached_reference(info["dataset"])
        images = _class_images(_digit_pngs(tmp_path / "zeros", 0, 20), data)
        refuse_erased_images(ws, "demo", images, data)  # 0 was never forgotten
    finally:
        ws.close()
