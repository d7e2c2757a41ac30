"""The independent mode against the registry (docs/design.md section 17): forget gives the
artifacts of a training without the class, learn touches no other artifact, and
``audit --rederive`` re-derives the served classes byte for byte (or fails loudly)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.audit.job import audit_job
from engine.forget import forget_job
from engine.image_jobs import learn_job, pretrain_backbone_job, train_model_job
from engine.jobs import run_job
from storage.errors import RefusedError
from storage.models import ModelVersion
from storage.workspace import Workspace
from tests.image.test_learn import _digit_pngs

ARCH = {"dataset": "digits", "patch_size": 4, "augment": 0, "seed": 0,
        "overrides": {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}}
QUICK = {"reference": False, "per_class": 30}


def _train(root: Path, classes: list[str], name: str = "ind") -> dict:
    opts = {k: v for k, v in ARCH.items() if k not in ("patch_size", "overrides")}
    return run_job(train_model_job(root, name=name, operator="alice", mode="independent",
                                   backbone_from="bb", classes=classes, **opts))


@pytest.fixture(scope="module")
def backbone_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with only a backbone pretrained (one epoch) on digits 0-4."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("indep") / "ws"
    run_job(pretrain_backbone_job(root, name="bb", operator="alice", classes=["0-4"],
                                  epochs=1, **ARCH))
    return root


@pytest.fixture(scope="module")
def trained_root(backbone_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("indep-trained") / "ws"
    shutil.copytree(backbone_root, root)
    result = _train(root, ["5-9"])
    assert result["mode"] == "independent" and result["erasure_kind"] == "exact"
    return root


@pytest.fixture()
def forgot_root(trained_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "forgot"
    shutil.copytree(trained_root, root)
    run_job(forget_job(root, model_name="ind", classes=["7"], operator="alice"))
    return root


def _live(root: Path, name: str = "ind") -> tuple[str, dict[str, str]]:
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            live = [v for v in session.query(ModelVersion).all()
                    if v.model.name == name and v.status == "live"][0]
            return live.shared_artifact, dict(live.class_artifacts)
    finally:
        ws.close()


def test_forget_leaves_the_artifacts_of_a_training_without_the_class(
        forgot_root: Path, backbone_root: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    shutil.copytree(backbone_root, scratch)
    _train(scratch, ["5", "6", "8", "9"])
    assert _live(forgot_root) == _live(scratch)


def test_rederive_finds_every_remaining_class_identical(forgot_root: Path) -> None:
    result = run_job(audit_job(forgot_root, "ind", operator="carol", rederive=0, **QUICK))
    found = result["rederive"]
    assert found["passed"] and found["identical"] == [5, 6, 8, 9] == found["classes"]
    assert found["same_environment"] and found["environment"]["threads"] == 1
    assert found["differing"] == [] and found["not_rederivable"] == []
    two = run_job(audit_job(forgot_root, "ind", operator="carol", rederive=2, **QUICK))
    assert len(two["rederive"]["classes"]) == 2 and two["rederive"]["passed"]


def test_a_tampered_class_fails_rederivation_and_the_cli(forgot_root: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    from cli.app import main

    _tamper(forgot_root, 6)
    code = main(["--workspace", str(forgot_root), "audit", "ind", "--rederive"])
    err = capsys.readouterr().err
    assert code == 1 and "re-derivation FAILED for class(es) 6 " in err
    ws = Workspace.open(forgot_root)
    with ws.sessions() as session:
        from storage.models import AuditRun

        run = session.query(AuditRun).filter_by(kind="image").one()
        assert run.metrics["rederive"]["differing"] == [6]
        from reports.audit_facts import audit_facts as _audit
        from reports.certificate_facts import failed_rederivation

        assert failed_rederivation(run) == [6]
        assert _audit(session, run, "exact")["passed"] is False
    ws.close()


def test_rederive_is_refused_for_another_mode(tmp_path: Path, backbone_root: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    from cli.app import main

    root = tmp_path / "iso"
    shutil.copytree(backbone_root, root)
    opts = {k: v for k, v in ARCH.items() if k not in ("patch_size", "overrides")}
    run_job(train_model_job(root, name="iso", operator="alice", mode="frozen", epochs=1,
                            backbone_from="bb", classes=["5-7"], **opts))
    with pytest.raises(RefusedError, match="'iso' is a frozen-mode model"):
        run_job(audit_job(root, "iso", operator="carol", rederive=0, **QUICK))
    assert main(["--workspace", str(root), "audit", "iso", "--rederive", "2"]) == 1
    assert "independent mode" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--workspace", str(root), "audit", "iso", "--rederive", "0"])


def test_learned_class_changes_no_other_artifact_and_rederives(
        trained_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "learn"
    shutil.copytree(trained_root, root)
    _, before = _live(root)
    zeros = _digit_pngs(tmp_path / "zeros", 0)
    result = run_job(learn_job(root, model_name="ind", class_name="zero",
                               data_dir=str(zeros), operator="alice"))
    _, after = _live(root)
    assert {k: v for k, v in after.items() if k != str(result["index"])} == before
    run_job(forget_job(root, model_name="ind", classes=["5"], operator="alice"))
    found = run_job(audit_job(root, "ind", operator="carol", rederive=0, **QUICK))["rederive"]
    assert found["passed"] and result["index"] in found["identical"]
    (zeros / "0.png").unlink()
    found = run_job(audit_job(root, "ind", operator="carol", rederive=0, **QUICK))["rederive"]
    assert not found["passed"] and found["not_rederivable"] == [result["index"]]


def _tamper(root: Path, cid: int) -> None:
    """Serve a class artifact whose numbers are not what the recipe gives (a well-formed,
    hash-consistent artifact: only re-derivation can tell)."""
    import torch

    from engine.model_store import load_live
    from engine.serialize import class_bytes

    ws = Workspace.open(root)
    try:
        model, _ = load_live(ws, "ind")
        with torch.no_grad():
            model.class_parameters(cid)["center"][0] += 1e-3
        sha = ws.artifacts.put(class_bytes(model, cid), kind="class")
        with ws.sessions.begin() as session:
            live = [v for v in session.query(ModelVersion).all()
                    if v.status == "live" and v.model.name == "ind"][0]
            live.class_artifacts = {**live.class_artifacts, str(cid): sha}
    finally:
        ws.close()


def test_the_demo_builds_an_exact_model_on_a_backbone_of_other_classes(tmp_path: Path) -> None:
    """The first-start demo's jobs, as the banner submits them (one epoch): the model's
    forgets are exact, and its classes are disjoint from the backbone's."""
    from gui.demo import BACKBONE_JOB, DIGITS_JOB

    root = tmp_path / "ws"
    run_job(pretrain_backbone_job(root, operator="demo", epochs=1, **BACKBONE_JOB.kwargs))
    out = run_job(train_model_job(root, operator="demo", **DIGITS_JOB.kwargs))
    assert out["mode"] == "independent" and out["erasure_kind"] == "exact"
    assert out["classes"] == ["5", "6", "7", "8", "9"] and out["test_accuracy"] > 0.5
