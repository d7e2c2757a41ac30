"""The engine's jobs on a real local Ray cluster (docs/design.md section 12).

One cluster (two worker CPUs, in this process) for the module; the bad-address tests run
before it starts, since a process joins one cluster.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cli.app import main
from engine.backend import engine_choice, make_client
from storage.errors import UnpromptError
from storage.models import Job
from storage.workspace import Workspace
from tests.gui.conftest import FAKE_PROBE, collect, finished, of
from tests.gui.jobs_for_tests import TINY_LIRA

ray = pytest.importorskip("ray", reason="the Ray engine backend needs the 'ray' package")

from engine.ray_client import RayEngineClient  # noqa: E402 - after the skip

JOBS = "tests.gui.jobs_for_tests"
TINY_VIT = {"embed_dim": 16, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}


def test_an_unreachable_ray_address_is_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "ws"
    code = main(["--workspace", str(workspace), "--engine", "ray://127.0.0.1:1", "gui"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: cannot reach the Ray cluster at ray://127.0.0.1:1 (")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not workspace.exists() and not ray.is_initialized()


def test_the_gui_explains_an_unreachable_ray_address(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QMessageBox

    from gui.app import EXIT_WORKSPACE, run_gui

    monkeypatch.setenv("UNPROMPT_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("UNPROMPT_ENGINE", "ray://127.0.0.1:1")
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, _title, text: shown.append(text))
    assert run_gui() == EXIT_WORKSPACE
    assert "Cannot reach the Ray cluster at ray://127.0.0.1:1" in shown[0]
    assert not (tmp_path / "ws").exists()


def test_a_cluster_without_unprompt_is_named_as_such() -> None:
    from engine.ray_client import death_reason

    exc = RuntimeError("The actor with name JobActor failed to import on the worker.\n"
                       "ModuleNotFoundError: No module named 'engine.ray_client'")
    assert death_reason(exc, "train") == ("the Ray cluster's workers cannot import "
                                          "engine.ray_client: install this version of "
                                          "Unprompt on every node")
    assert death_reason(RuntimeError("killed"), "train") == \
        "the Ray worker running train died (RuntimeError)"


def test_an_unknown_engine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNPROMPT_ENGINE", "spark://x")
    with pytest.raises(UnpromptError, match="unknown engine 'spark://x'"):
        make_client()
    assert engine_choice("auto") == "auto"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)  # "local": a new cluster even where one runs already
    yield
    ray.shutdown()


@pytest.fixture()
def client(cluster: None) -> Iterator[RayEngineClient]:
    engine = RayEngineClient("auto", probe=FAKE_PROBE)
    engine.start()
    yield engine
    engine.close()


def _rows(workspace: Workspace) -> list[Job]:
    with workspace.sessions() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def test_jobs_run_and_cancel_on_ray_and_the_registry_records_them(
        client: RayEngineClient, workspace: Workspace) -> None:
    path = str(workspace.root)
    done = client.submit(f"{JOBS}:count", {"n": 3, "workspace": path})
    endless = client.submit(f"{JOBS}:forever", {"workspace": path})
    events = collect(client, lambda ev: bool(of(ev, endless, "progress")), timeout=120)
    assert client.cancel(endless)
    events = collect(client, finished(done, endless), timeout=120, seen=events)
    assert [e.kind for e in events if e.job_id == done] == \
        ["started", "progress", "progress", "progress", "result", "finished"]
    assert of(events, done, "result")[0].data["value"]["pid"] != os.getpid()
    assert of(events, endless, "cancelled")[0].data["message"] == "cancelled by the operator"
    assert sorted((r.kind, r.status) for r in _rows(workspace)) == \
        [("count", "succeeded"), ("forever", "cancelled")]  # they ran side by side
    assert client.state == "idle" and client.jobs() == []


def test_a_killed_ray_worker_fails_its_job_and_it_can_be_rerun(
        client: RayEngineClient, workspace: Workspace) -> None:
    path = str(workspace.root)
    job = client.submit(f"{JOBS}:forever", {"workspace": path})
    events = collect(client, lambda ev: bool(of(ev, job, "progress")), timeout=120)
    os.kill(ray.get(client._flights[job].actor.pid.remote()), signal.SIGKILL)
    events = collect(client, finished(job), timeout=120, seen=events)
    assert "the Ray worker running forever died" in of(events, job, "error")[0].data["message"]
    assert of(events, job, "finished")[0].data["status"] == "failed"
    again = client.submit(f"{JOBS}:count", {"n": 1, "workspace": path})
    collect(client, finished(again), timeout=120)
    assert [(r.kind, r.status) for r in _rows(workspace)] == \
        [("forever", "failed"), ("count", "succeeded")]


def test_the_gui_bridge_runs_jobs_on_ray(cluster: None, qtbot) -> None:  # noqa: ANN001
    from gui.bridge import EngineBridge

    bridge = EngineBridge(RayEngineClient("auto", probe=FAKE_PROBE), interval_ms=20)
    bridge.start()
    try:
        handle = bridge.submit(f"{JOBS}:count", {"n": 2})
        progress, results = [], []
        handle.progressed.connect(progress.append)
        handle.succeeded.connect(results.append)
        with qtbot.waitSignal(handle.finished, timeout=120_000) as finished_signal:
            pass
        assert finished_signal.args == ["succeeded"]
        assert [p["fraction"] for p in progress] == [0.5, 1.0]
        assert results[0]["total"] == 2 and bridge.device.startswith("Ray cluster at auto")
    finally:
        bridge.close()


def test_a_gpu_job_asks_ray_for_a_gpu() -> None:
    from engine.job_classes import INTERACTIVE, LONG
    from engine.ray_resources import job_options, task_options

    assert job_options({"device": "cuda"}, LONG, 1) == {"num_gpus": 1}
    assert job_options({"device": "auto"}, LONG, 2) == {"num_gpus": 1}
    assert job_options({"device": "cpu"}, LONG, 2) == {}
    assert job_options({}, INTERACTIVE, 2) == {}  # a forget never waits for a GPU
    assert job_options({"device": "cuda"}, LONG, 0) == {}  # fails naming the missing GPU
    assert task_options("cuda:0") == {"num_cpus": 1, "num_gpus": 1, "max_retries": 0}
    assert task_options("cpu") == {"num_cpus": 1, "max_retries": 0}


@pytest.fixture()
def local_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run what follows as the local worker would (no fan-out), in this Ray-connected
    process; one torch thread, as in a Ray task of one CPU."""
    import torch

    from engine import ray_fanout

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield lambda: monkeypatch.setattr(ray_fanout, "in_ray", lambda: False)
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_lira_shadows_fan_out_as_ray_tasks_with_the_local_figures(
        client: RayEngineClient, local_path) -> None:  # noqa: ANN001
    from engine.jobs import run_job
    from tests.gui.jobs_for_tests import tiny_lira

    job = client.submit(f"{JOBS}:tiny_lira", {"k": 2})
    events = collect(client, finished(job), timeout=240)
    parallel = [e.data["message"] for e in of(events, job, "progress")
                if e.data["data"].get("parallel")]
    assert parallel == ["shadow models 1/2 done", "shadow models 2/2 done"]
    local_path()
    assert of(events, job, "result")[0].data["value"] == run_job(tiny_lira(2))


def test_independent_classes_derive_as_ray_tasks_to_the_same_bytes(
        cluster: None, local_path) -> None:  # noqa: ANN001
    from engine.jobs import run_job
    from engine.serialize import split
    from engine.training import TrainConfig, train_job

    cfg = TrainConfig.for_dataset("digits", mode="independent", classes=[5, 6, 7],
                                  max_per_class=40, patch_size=4, overrides=TINY_VIT)
    progress: list = []
    on_ray = run_job(train_job(cfg), progress.append)
    assert "classes 3/3 done" in [p.message for p in progress]
    local_path()
    assert split(on_ray.model) == split(run_job(train_job(cfg)).model)  # every artifact


def test_the_audit_references_train_as_ray_tasks_to_the_same_artifacts(
        cluster: None, local_path, tmp_path: Path) -> None:  # noqa: ANN001
    import shutil

    from engine.image_jobs import train_model_job
    from engine.jobs import run_job

    run_job(train_model_job(tmp_path / "ray", name="demo", operator="alice",
                            **{**TINY_LIRA, "max_per_class": 30, "overrides": TINY_VIT}))
    shutil.copytree(tmp_path / "ray", tmp_path / "local")
    on_ray, progress = _reference_and_twin(tmp_path / "ray")
    assert "retrain references 2/2 done" in progress
    local_path()
    local, progress = _reference_and_twin(tmp_path / "local")
    assert not any("references" in line for line in progress)
    assert on_ray == local and on_ray[0] != on_ray[1]  # the twin has its own seed


def _reference_and_twin(root: Path) -> tuple[list[dict], list[str]]:
    """The stored artifacts of the audit's retrain reference and its twin (class 2 out)."""
    from engine.audit.facts import registry_facts
    from engine.audit.job import _twin_facts
    from engine.audit.reference import reference_jobs
    from engine.datasets import load_reference
    from engine.jobs import run_job
    from engine.retrain import facts_dataset
    from storage.models import AuditRun

    ws = Workspace.open(root)
    try:
        facts = {**registry_facts(ws, "demo"), "forgotten": [2]}
        progress: list = []
        job = reference_jobs(ws, [facts, _twin_facts(facts)],
                             load_reference(facts_dataset(ws, "demo")), "carol")
        runs = [info["audit_run"] for _, info in run_job(job, progress.append)]
        with ws.sessions() as session:
            stored = [session.get(AuditRun, run).metrics for run in runs]
        return ([{k: m[k] for k in ("shared_artifact", "class_artifacts")} for m in stored],
                [p.message for p in progress])
    finally:
        ws.close()
