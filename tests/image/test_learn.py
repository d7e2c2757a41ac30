"""Learning a class adds one prompt and head row; every other parameter stays identical."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.image_jobs import learn_job
from engine.jobs import run_job
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.models import ModelVersion
from storage.workspace import Workspace
from tests.image.conftest import train_tiny


def _digit_pngs(folder: Path, digit: int, count: int = 40) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    folder.mkdir(parents=True)
    images = data.images[data.target == digit][:count]
    for i, img in enumerate(images):
        Image.fromarray((img * 255 / 16).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def zero_free(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("learn") / "ws"
    train_tiny(root, classes=[str(i) for i in range(1, 10)])
    return root


def test_new_class_leaves_the_others_untouched(zero_free: Path, tmp_path: Path) -> None:
    ws = Workspace.open(zero_free)
    with ws.sessions() as session:
        before = dict(session.query(ModelVersion).one().class_artifacts)
    ws.close()
    result = run_job(learn_job(zero_free, model_name="demo", class_name="zero",
                               data_dir=str(_digit_pngs(tmp_path / "zeros", 0)),
                               operator="alice", epochs=15))
    assert result["version"] == 2 and result["index"] == 10
    assert result["train_accuracy"] > 0.5
    before_acc, after_acc = result["accuracy_before"], result["accuracy_after"]
    assert abs(result["retained_change"]) <= 0.005, (before_acc, after_acc)
    ws = Workspace.open(zero_free)
    with ws.sessions() as session:
        v2 = session.query(ModelVersion).filter_by(number=2).one()
        assert {k: v for k, v in v2.class_artifacts.items() if k != "10"} == before
    ws.close()


def test_learn_refuses_a_duplicate_name_and_bad_folders(ws_root: Path, tmp_path: Path) -> None:
    with pytest.raises(RefusedError, match="already has a class"):
        run_job(learn_job(ws_root, model_name="demo", class_name="3", data_dir=str(tmp_path),
                          operator="a"))
    with pytest.raises(NotFoundError, match="does not exist"):
        run_job(learn_job(ws_root, model_name="demo", class_name="x",
                          data_dir=str(tmp_path / "nope"), operator="a"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnpromptError, match="no images"):
        run_job(learn_job(ws_root, model_name="demo", class_name="x",
                          data_dir=str(tmp_path / "empty"), operator="a"))
