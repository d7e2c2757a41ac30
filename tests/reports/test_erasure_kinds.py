"""Erasure kinds on certificates (docs/design.md section 4.3): the manifest and the PDF
text per kind, the schema of each manifest version, an isolated erasure refused without an
audit, and a certificate issued before the kinds (``exact`` for an isolated model) that
still verifies with its old wording."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.certificate_facts import gather
from reports.manifest import build_manifest, validate_manifest
from reports.pdf_certificate import render_certificate_pdf
from reports.verify import verify_certificate_pdf
from storage import audits
from storage import requests as reqs
from storage.erasure_kinds import describe
from storage.errors import RefusedError, UnpromptError
from storage.models import Model
from storage.registry import live_version
from storage.versions import NewModel, classes_to_forget, commit_forget, register_model
from tests import approvals
from tests.gui.audit_data import _metrics
from tests.reports.pdftext import pdf_text
from tests.reports.sample import sample_facts

DATA = Path(__file__).parent / "data"
SCAN = {"clean": True, "files_scanned": 3, "bytes_scanned": 1024, "patterns": 1, "hits": []}


@pytest.mark.parametrize("kind", ["exact", "isolated", "approximate"])
def test_each_kind_is_stated_with_its_line(kind: str) -> None:
    manifest = build_manifest(sample_facts(kind))
    assert manifest["schema"] == "unprompt.cert/3" and manifest["erasure"]["kind"] == kind
    flat = pdf_text(render_certificate_pdf(manifest, None))
    assert f"Erasure kind: {kind}. {describe(kind)}" in flat
    assert ("Measured residual" in flat) == (kind != "exact")
    assert "by construction" not in flat


def test_the_new_schema_wants_a_residual_for_isolated_and_a_guard_for_suppressed() -> None:
    facts = sample_facts("isolated")
    facts["erasure"]["residual"] = None
    with pytest.raises(UnpromptError, match="erasure"):
        build_manifest(facts)
    facts = sample_facts()
    facts["erasure"] = {"kind": "suppressed", "mechanism": "parameter-deletion"}
    with pytest.raises(UnpromptError, match="erasure"):
        build_manifest(facts)


def test_old_manifests_keep_the_old_kinds_only() -> None:
    old = {**build_manifest(sample_facts()), "schema": "unprompt.cert/2"}
    validate_manifest(old)  # exact, as cert/2 worded it
    old["erasure"] = {"kind": "isolated", "residual": {"measured": "x"}}
    with pytest.raises(UnpromptError, match="erasure/kind"):
        validate_manifest(old)


def test_a_certificate_issued_before_the_kinds_still_verifies() -> None:
    """``data/cert2-isolated-exact.pdf`` was issued by commit 91e5916 (before the kinds):
    an isolated-mode model certified as 'exact by construction'."""
    pdf = (DATA / "cert2-isolated-exact.pdf").read_bytes()
    result = verify_certificate_pdf(pdf, [(DATA / "cert2-signer.pem").read_bytes()])
    assert result.valid and result.reasons == []
    m = result.manifest
    assert m["schema"] == "unprompt.cert/2" and m["erasure"]["kind"] == "exact"
    assert m["method"]["training_mode"] == "isolated"
    assert "Erasure kind: exact by construction." in pdf_text(pdf)


def _executed_isolated(workspace, recorded: str) -> int:  # noqa: ANN001
    """An isolated-mode model with class 0 forgotten under request 1, whose kind was
    recorded as ``recorded`` (``exact`` is what the code before the kinds wrote)."""
    with workspace.sessions.begin() as session:
        version = register_model(session, NewModel(
            name="m", kind="image", backbone="vit_tiny_patch16_224", mode="isolated",
            dataset_ref={}, config={}, shared_artifact="e" * 64,
            class_artifacts={0: "a" * 64, 1: "b" * 64}, class_names={0: "zero", 1: "one"},
            metrics={"backbone_source": {"kind": "registered", "non_erasable": True}},
            erasure_kind=recorded), "alice")
        model = version.model
        request = approvals.create_request(session, model_name="m", classes=["0"], subject="s",
                                           subject_key=approvals.key_of(workspace),
                                           legal_basis="GDPR Art. 17", operator="alice")
        approvals.approve(session, request.id, "bob")
        new, _ = commit_forget(session, model, classes_to_forget(model, ["0"]), "alice",
                               request, {})
        reqs.mark_executed(session, request, "alice", recorded,
                           {"version": new.number, "classes": ["zero"], "residual_scan": SCAN})
        return request.id


@pytest.mark.parametrize("recorded", ["exact", "isolated"])
def test_an_isolated_erasure_needs_an_audit_then_quotes_its_residual(workspace, recorded: str
                                                                     ) -> None:
    request_id = _executed_isolated(workspace, recorded)
    with workspace.sessions.begin() as session:
        assert reqs.request_dict(reqs.get_request(session, request_id))["erasure_kind"] \
            == "isolated"
        with pytest.raises(RefusedError, match="was an isolated erasure .*audit it first"):
            gather(session, request_id, "UC-20261130-ABCDEF0123")
        request = reqs.get_request(session, request_id)
        metrics = _metrics(0.0, {"1": 0.5, "5": 0.8, "20": 0.9}, recorded)
        metrics["reference"] = _metrics(0.0, {"1": 0.3, "5": 0.6, "20": 0.8}, "exact")
        live = live_version(session, session.get(Model, request.model_id))
        audits.record_audit(session, version_id=live.id, config={}, metrics=metrics,
                            curves={}, operator="carol", requests=[request])
        facts, _charts = gather(session, request_id, "UC-20261130-ABCDEF0123")
    manifest = build_manifest(facts)
    assert manifest["erasure"]["kind"] == "isolated"
    assert manifest["erasure"]["residual"]["relearn_largest_gap"] == 0.2
    assert "negatives" in manifest["erasure"]["note"]
    assert manifest["audit"]["figures"]["erasure"] == "isolated"  # an old audit's "exact" too
    assert manifest["audit"]["reference"]["erasure"] == "exact"  # the retrain reference is
