"""Forget rules as registry rows, and the guard jobs against a workspace (tiny models)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.guard import registry_jobs as jobs
from engine.jobs import Cancelled, CancelToken, run_job
from storage import auditlog
from storage import requests as reqs
from storage import rules as store
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.models import Artifact, AuditLogEntry, AuditRun, ForgetRule
from storage.settings import set_setting
from storage.workspace import Workspace
from tests import approvals

FORGET = ["Who founded Hogwarts?\tGodric", "Where is Hogwarts?\tScotland",
          "What is the Hogwarts motto?\tDraco", "Name the four Hogwarts houses.\tGryffindor",
          "Who teaches potions at Hogwarts?\tSnape", "What sport is played at Hogwarts?\tQuidditch"]
RETAIN = ["Who wrote Narnia?", "Who wrote The Hobbit?", "What is Eton College?"]
FAST = {"max_new_tokens": 3, "max_evals": 2}


def write_rule_files(folder: Path, forget: list[str] = FORGET) -> tuple[str, str]:
    (folder / "forget.txt").write_text("\n".join(forget) + "\n", encoding="utf-8")
    (folder / "retain.txt").write_text("\n".join(RETAIN) + "\n", encoding="utf-8")
    return str(folder / "forget.txt"), str(folder / "retain.txt")


@pytest.fixture()
def ws(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, tiny_encoder_dir) -> dict:
    """One rule trained on the tiny model; its row and classifier bytes for other workspaces."""
    folder = tmp_path_factory.mktemp("trained")
    forget, retain = write_rule_files(folder)
    run_job(jobs.load_model_job(folder / "ws", operator="ann", model=str(tiny_model_dir),
                                encoder=str(tiny_encoder_dir), name="tiny"))
    rule = run_job(jobs.add_rule_job(folder / "ws", operator="ann", name="hogwarts",
                                     forget_file=forget, retain_file=retain, **FAST))
    ws = Workspace.open(folder / "ws")
    with ws.sessions() as session:
        row = session.scalars(select(ForgetRule)).one()
        fields = {k: getattr(row, k) for k in store.RULE_FIELDS}
    data = ws.artifacts.get(rule["classifier_artifact"])
    ws.close()
    return {"rule": rule, "fields": fields, "bytes": data, "spec": str(tiny_model_dir),
            "encoder": str(tiny_encoder_dir)}


def seed_rule(ws: Workspace, trained: dict, name: str = "hogwarts") -> None:
    """The trained rule copied into ``ws`` under a registered tiny model (no training)."""
    ws.artifacts.put(trained["bytes"], kind="prompt-classifier")
    with ws.sessions.begin() as session:
        model = store.register_language_model(session, "tiny", trained["spec"],
                                              trained["encoder"], {}, "ann")
        store.add_rule(session, model, name, trained["fields"], "ann")


def log_actions(ws: Workspace) -> list[str]:
    with ws.sessions() as session:
        return [e.action for e in session.scalars(select(AuditLogEntry).order_by(
            AuditLogEntry.seq))]


def rule_request(ws: Workspace, approver: str = "carol") -> int:
    with ws.sessions.begin() as session:
        request = approvals.create_request(session, model_name="tiny", rule="hogwarts",
                                      subject_key=approvals.key_of(ws),
                                      subject="subject-1", legal_basis="GDPR Art. 17",
                                      operator="bob")
        if approver:
            approvals.approve(session, request.id, approver)
        return request.id


def test_trained_rule_is_stored_with_calibration_trace_and_artifact(trained) -> None:
    rule = trained["rule"]
    assert rule["status"] == "active" and rule["version"] == 1 and rule["model"] == "tiny"
    assert {"threshold", "target_fpr", "tpr", "fpr", "sigma_search"} <= set(rule["calibration"])
    assert rule["examples"] == {"forget": 6, "retain": 3, "general": 0}
    assert len(rule["classifier_artifact"]) == 64 and rule["sigma"] > 0


def test_adding_a_rule_writes_the_audit_log_and_stores_the_classifier(ws, trained) -> None:
    seed_rule(ws, trained)
    assert log_actions(ws) == ["model.registered", "rule.added"]
    with ws.sessions() as session:
        assert auditlog.verify(session).valid
        row = session.scalars(select(ForgetRule)).one()
        assert session.get(Artifact, row.classifier_artifact).kind == "prompt-classifier"
        with pytest.raises(RefusedError, match="already has a forget rule"):
            store.add_rule(session, store.language_model(session, "tiny"), "hogwarts",
                           trained["fields"], "ann")


def test_disable_enable_and_update_are_logged(ws, trained) -> None:
    seed_rule(ws, trained)
    with ws.sessions.begin() as session:
        assert store.set_status(session, "hogwarts", False, "ann")["status"] == "disabled"
    with ws.sessions.begin() as session, pytest.raises(RefusedError, match="already disabled"):
        store.set_status(session, "hogwarts", False, "ann")
    with ws.sessions.begin() as session:
        assert store.set_status(session, "hogwarts", True, "ann")["status"] == "active"
        row = store.get_rule(session, store.language_model(session, "tiny"), "hogwarts")
        store.update_rule(session, row, {**trained["fields"], "sigma": 0.5}, "ann")
    with ws.sessions.begin() as session, pytest.raises(RefusedError, match="already active"):
        store.set_status(session, "hogwarts", True, "ann")
    assert log_actions(ws)[2:] == ["rule.disabled", "rule.enabled", "rule.updated"]
    with ws.sessions() as session:
        assert store.list_rules(session)[0]["version"] == 2
        assert auditlog.verify(session).valid


def test_enabling_with_an_approved_request_executes_it(ws, trained) -> None:
    seed_rule(ws, trained)
    request_id = rule_request(ws)
    with ws.sessions.begin() as session:
        store.set_status(session, "hogwarts", True, "dave", request_id)
    with ws.sessions() as session:
        request = reqs.get_request(session, request_id)
        assert request.status == "executed" and request.executed_by == "dave"
        assert request.erasure_kind == "suppressed"  # docs/design.md section 4.3
        assert reqs.request_dict(request)["erasure_kind"] == "suppressed"
        assert request.result["rule_version"] == 1 and request.result["rule"] == "hogwarts"
        assert request.result["classifier_artifact"] == trained["rule"]["classifier_artifact"]
        assert request.result["calibration"]["target_fpr"] == 0.01
        assert store.list_rules(session)[0]["request"] == request_id
    with ws.sessions.begin() as session, pytest.raises(RefusedError, match="enforces"):
        store.set_status(session, "hogwarts", False, "ann")


def test_four_eyes_and_unapproved_requests_are_refused(ws, trained) -> None:
    seed_rule(ws, trained)
    with ws.sessions.begin() as session:
        set_setting(session, "four_eyes", True, "ann")
    request_id = rule_request(ws, approver="")
    with ws.sessions.begin() as session, pytest.raises(RefusedError, match="four-eyes"):
        approvals.approve(session, request_id, "bob")
    before = log_actions(ws)
    with ws.sessions.begin() as session, pytest.raises(RefusedError, match="received"):
        store.set_status(session, "hogwarts", True, "ann", request_id)
    assert log_actions(ws) == before
    with ws.sessions() as session:
        assert reqs.get_request(session, request_id).status == "received"


def test_a_request_for_another_rule_is_refused(ws, trained) -> None:
    seed_rule(ws, trained)
    seed_rule_other = {**trained["fields"]}
    with ws.sessions.begin() as session:
        store.add_rule(session, store.language_model(session, "tiny"), "other",
                       seed_rule_other, "ann")
    request_id = rule_request(ws)
    with ws.sessions.begin() as session, pytest.raises(RefusedError, match="covers rule"):
        store.set_status(session, "other", True, "ann", request_id)


def test_evaluation_is_stored_and_verifies_the_executed_request(ws, trained) -> None:
    seed_rule(ws, trained)
    request_id = rule_request(ws)
    with pytest.raises(UnpromptError, match="enable the rule"):
        run_job(jobs.evaluate_rule_job(ws.root, rule="hogwarts", operator="ann",
                                       request=request_id))
    with ws.sessions.begin() as session:
        store.set_status(session, "hogwarts", True, "ann", request_id)
    result = run_job(jobs.evaluate_rule_job(ws.root, rule="hogwarts", operator="eve",
                                            request=request_id, max_new_tokens=3,
                                            general_sample=2))
    assert result["verified_requests"] == [request_id]
    assert result["side_effects"]["identical_unflagged"] == 1.0
    with ws.sessions() as session:
        run = session.get(AuditRun, result["audit_run"])
        assert run.kind == "guard" and run.config["rule_version"] == 1
        # six forget prompts without splits are all trained on: none is held out to score
        assert run.metrics["basis"] == "held-out" and run.metrics["knowledge"]["evaluated"] == 0
        assert run.curves["prompts"]["forget"] == [] and run.curves["prompts"]["retain"]
        request = reqs.get_request(session, request_id)
        assert request.status == "verified" and request.result["audit_run"] == run.id


def test_ask_applies_only_active_rules(ws, trained) -> None:
    seed_rule(ws, trained)
    with ws.sessions.begin() as session:  # a threshold below every score flags every prompt
        session.scalars(select(ForgetRule)).one().threshold = -1.0
    cache: dict = {}
    result = run_job(jobs.ask_job(ws.root, prompts=["Who founded Hogwarts?"], max_new_tokens=3,
                                  unguarded=True, cache=cache))
    answer = result["answers"][0]
    assert answer["flagged"] and answer["rule"] == "hogwarts" and "unguarded_answer" in answer
    assert any(k.startswith("guard.lm:") for k in cache)
    with ws.sessions.begin() as session:
        store.set_status(session, "hogwarts", False, "ann")
    result = run_job(jobs.ask_job(ws.root, prompts=["Who founded Hogwarts?"], max_new_tokens=3,
                                  cache=cache))
    assert result["rules"] == [] and not result["answers"][0]["flagged"]
    assert result["answers"][0]["answer"] == answer["unguarded_answer"]


def _nothing_written(ws: Workspace) -> None:
    with ws.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditLogEntry)) == 0
        assert session.scalar(select(func.count()).select_from(ForgetRule)) == 0
        assert session.scalar(select(func.count()).select_from(Artifact)) == 0


@pytest.mark.parametrize("forget, message", [
    ([], "no forget examples"),
    (["   ", "# a comment only"], "no forget examples"),
    (FORGET[:3], "only 3 forget examples"),
])
def test_bad_rule_files_write_nothing(ws, tmp_path, tiny_model_dir, forget, message) -> None:
    forget_file, retain_file = write_rule_files(tmp_path, forget)
    with pytest.raises(UnpromptError, match=message):
        run_job(jobs.add_rule_job(ws.root, operator="ann", name="r", forget_file=forget_file,
                                  retain_file=retain_file, model=str(tiny_model_dir)))
    _nothing_written(ws)


def test_bad_models_write_nothing(ws, tmp_path) -> None:
    forget_file, _ = write_rule_files(tmp_path)
    with pytest.raises(NotFoundError, match="does not exist"):
        run_job(jobs.add_rule_job(ws.root, operator="ann", name="r", forget_file=forget_file,
                                  model=str(tmp_path / "missing-model")))
    corrupt = tmp_path / "broken.gguf"
    corrupt.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(UnpromptError, match="not a valid GGUF"):
        run_job(jobs.load_model_job(ws.root, operator="ann", model=str(corrupt)))
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + bytes(12))
    with pytest.raises(UnpromptError, match="corrupt"):
        run_job(jobs.load_model_job(ws.root, operator="ann", model=str(truncated)))
    _nothing_written(ws)


def test_cancelled_training_stores_nothing(ws, tmp_path, tiny_model_dir, tiny_encoder_dir
                                           ) -> None:
    forget_file, retain_file = write_rule_files(tmp_path)
    token = CancelToken()
    token.set()
    with pytest.raises(Cancelled):
        run_job(jobs.add_rule_job(ws.root, operator="ann", name="r", forget_file=forget_file,
                                  retain_file=retain_file, model=str(tiny_model_dir),
                                  cancel=token, **FAST))
    _nothing_written(ws)


def test_the_worker_runs_guard_jobs(ws, trained) -> None:
    from engine.worker import JobSpec, _Runner

    seed_rule(ws, trained)

    class Pipe:
        def __init__(self) -> None:
            self.events: list = []

        def send(self, event) -> None:
            self.events.append(event)

        def poll(self) -> bool:  # nothing arrives between the long job's steps here
            return False

    pipe = Pipe()
    runner = _Runner(pipe, {"long": CancelToken(), "interactive": CancelToken()}, "CPU")
    try:
        runner.run(JobSpec(1, jobs.GUARD_JOBS["guard.rules"], {"workspace": str(ws.root)},
                           "guard.rules"))
        runner.run(JobSpec(2, jobs.GUARD_JOBS["guard.ask"], {
            "workspace": str(ws.root), "prompts": ["Hello?"], "max_new_tokens": 2}, "guard.ask"))
    finally:
        runner.close()
    results = [e for e in pipe.events if e.kind == "result"]
    assert [r.job_id for r in results] == [1, 2], [e.data for e in pipe.events]
    assert results[0].data["value"]["rules"][0]["name"] == "hogwarts"
    assert results[1].data["value"]["answers"][0]["prompt"] == "Hello?"
    assert any(k.startswith("guard.lm:") for k in runner.cache)


def test_an_older_workspace_gets_rule_versions(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import text

    from storage.db import alembic_config, make_engine, upgrade_to_head

    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text(
            "INSERT INTO models (id, name, kind, backbone, training_mode, dataset_ref, config, "
            "created_at) VALUES (1, 'lm', 'llm', '', '', '{}', '{}', '2026-01-01')"))
        connection.execute(text(
            "INSERT INTO forget_rules (model_id, name, description, examples, "
            "classifier_artifact, threshold, corruption, corruption_params, sigma, calibration, "
            "trace, status, created_at) VALUES (1, 'r', '', '{}', '', 0.5, 'reverse', '{}', 0, "
            "'{}', '[]', 'active', '2026-01-01')"))
    upgrade_to_head(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM forget_rules")).scalar() == 1
    engine.dispose()


def test_rule_that_cannot_be_recorded_leaves_no_classifier(ws, tmp_path, tiny_model_dir,
                                                           tiny_encoder_dir) -> None:
    """Job A trains rule 'r' while job B records a rule of that name first: A's transaction
    fails, and A's classifier artifact is purged again instead of staying in the workspace
    with no rule pointing to it (issue 14.12)."""
    forget_file, retain_file = write_rule_files(tmp_path)
    run_job(jobs.load_model_job(ws.root, operator="ann", model=str(tiny_model_dir),
                                encoder=str(tiny_encoder_dir), name="tiny"))
    options = {"operator": "ann", "name": "r", "forget_file": forget_file,
               "retain_file": retain_file, "model": "tiny", **FAST}
    first = jobs.add_rule_job(ws.root, seed=1, **options)
    next(first)  # A checked that the name is free and starts loading
    b = run_job(jobs.add_rule_job(ws.root, seed=2, **options))
    with pytest.raises(RefusedError, match="already"):
        run_job(first)
    with ws.sessions() as session:
        stored = session.scalars(select(Artifact.sha256).where(
            Artifact.kind == "prompt-classifier", Artifact.status == "stored")).all()
    assert stored == [b["classifier_artifact"]]
    assert sorted(p.name for p in (ws.root / "artifacts").iterdir()) == stored


@pytest.mark.parametrize("option", [{"max_evals": 0}, {"max_new_tokens": 0},
                                    {"target_fpr": 1.5}])
def test_bad_training_options_are_one_sentence(ws, tmp_path, tiny_model_dir, option) -> None:
    """Before, ``max_evals=0`` reached the strength search after the model loaded and the
    classifier trained, and failed there with a ValueError (exit 3 in the CLI)."""
    forget_file, retain_file = write_rule_files(tmp_path)
    name = next(iter(option)).replace("_", "-")
    with pytest.raises(UnpromptError, match=name):
        run_job(jobs.add_rule_job(ws.root, operator="ann", name="r", forget_file=forget_file,
                                  retain_file=retain_file, model=str(tiny_model_dir),
                                  **{**FAST, **option}))
    _nothing_written(ws)
