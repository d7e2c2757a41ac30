"""What a default-shaped audit adds for a statistician: RMIA, intervals, verdicts."""

from __future__ import annotations

from pathlib import Path

from engine.audit.schema import check_metrics
from storage.models import AuditRun
from storage.workspace import Workspace
from tests.audit.conftest import QUICK


def test_rmia_beside_the_other_attacks_with_a_chosen_on_a_pair_of_shadows(audited: dict
                                                                          ) -> None:
    rmia, ref = audited["result"]["rmia"], audited["result"]["reference"]["rmia"]
    assert rmia["a_chosen"] is True and rmia["reference_models"] == ["twin"]
    assert "shadow" in rmia["a_basis"] and max(rmia["a_grid_auc"].values()) == \
        rmia["a_grid_auc"][f"{rmia['a']:g}"]
    assert ref["reference_models"] == ["twin"] and ref["a"] == rmia["a"]
    assert 0.0 <= rmia["auc"] <= 1.0 and "tpr_at_1pct_fpr" in rmia
    # about 360 non-members: a TPR at 0.1% FPR would need 1000, so it is omitted
    assert "tpr_at_0_1pct_fpr" not in rmia
    assert "1000 non-members" in rmia["omitted"]["tpr_at_0_1pct_fpr"]
    assert "auc" in rmia["per_class"]["3"] and "tpr_at_1pct_fpr" not in rmia["per_class"]["3"]
    lira = audited["result"]["lira"]["rmia"]  # RMIA with the LiRA shadows, same targets
    assert lira["a"] == rmia["a"] and 0.0 <= lira["auc"] <= 1.0


def test_every_figure_has_an_interval_a_floor_and_a_verdict_or_a_reason(audited: dict
                                                                        ) -> None:
    stats = audited["result"]["statistics"]
    assert stats["method"]["resamples"] == 200 and stats["method"]["level"] == 0.95
    card = stats["figures"]["scorecard.test_accuracy"]
    assert card["model_ci"][0] <= card["model"] <= card["model_ci"][1]
    assert card["gap_ci"][0] <= card["gap"] <= card["gap_ci"][1]
    assert card["verdict"] in ("pass", "fail", "inconclusive") and card["samples"] > 300
    assert "floor" in card and card["floor"] == audited["result"]["reference"]["floor"][
        "scorecard.test_accuracy"]
    omitted = stats["figures"]["threshold_attacks.loss.tpr_at_0_1pct_fpr"]
    assert omitted["verdict"] is None and "1000 non-members" in omitted["reason"]
    relearn = stats["figures"]["relearn.5"]  # one relearn seed: a point, no interval
    assert "model" in relearn and "model_ci" not in relearn and "3 seeds" in relearn["reason"]
    lira = stats["figures"]["lira.auc"]  # on the LiRA targets, the twin a LiRA target too
    assert lira["model_ci"][0] <= lira["model"] <= lira["model_ci"][1] and "floor" in lira
    assert "lira.rmia.auc" in stats["figures"]
    three = stats["per_class"]["3"]
    assert three["verdict"] in ("pass", "fail", "inconclusive") and three["samples"] > 0
    assert set(three["figures"]) >= {"test_accuracy", "rmia.auc", "loss.auc", "relearn.5"}
    counts = stats["verdict"]["classes"]
    assert sum(counts.values()) == len(stats["per_class"]) == 10
    assert stats["verdict"]["verdict"] in ("pass", "fail", "inconclusive")


def test_the_twin_is_cached_and_drawn_as_a_band(audited: dict, audited_root: Path) -> None:
    ws = Workspace.open(audited["root"])
    with ws.sessions() as session:
        run = session.get(AuditRun, audited["result"]["audit_run"])
        curves, config = run.curves, run.config
        references = session.query(AuditRun).filter_by(kind="reference").count()
    ws.close()
    assert config["twin_run"] != config["reference_run"] and references == 2
    assert "twin" in curves["roc"] and "twin" in curves["rmia"]
    assert set(curves["rmia"]) == {"model", "reference", "twin"}
    assert "twin" in curves["per_class_accuracy"] and "twin" in curves["relearn"]


def test_the_references_relearn_figures_are_kept_with_them_and_read_back(
        audited: dict, audited_root: Path) -> None:
    from engine.audit.job import audit_job
    from engine.jobs import run_job

    progress: list = []
    again = run_job(audit_job(audited_root, "demo", relearn=True, operator="carol",
                              **{**QUICK, "twin": True}), progress.append)
    attacked = {p.message.split(": relearn")[0] for p in progress
                if "relearn class" in p.message}
    assert attacked == {"relearn: model"}  # the two references' figures: read back
    first = audited["result"]
    assert again["reference"]["relearn"] == first["reference"]["relearn"]


def test_check_metrics_accepts_counts_and_signed_gaps_only_where_they_belong(audited: dict
                                                                            ) -> None:
    import copy

    metrics = copy.deepcopy({k: v for k, v in audited["result"].items() if k != "audit_run"})
    assert check_metrics(metrics, reference=True, lira=True, relearn=True) == []
    metrics["statistics"]["figures"]["scorecard.test_accuracy"]["model_ci"] = [-0.2, 0.5]
    metrics["rmia"]["members"] = -3
    problems = check_metrics(metrics, reference=True, lira=True, relearn=True)
    assert any("model_ci.0" in p for p in problems) and any("members" in p for p in problems)
