"""Issue and verify certificates against a workspace (docs/design.md sections 2, 3, 7).

``certify`` gathers the facts of one erasure request from the registry, builds and
validates the manifest, renders and signs the PDF (with an RFC 3161 timestamp when the
``tsa_url`` setting names an authority), writes PDF + JSON, keeps a copy under
``<workspace>/certificates/``, and then, in one transaction, records the Certificate row,
moves the request to certified, writes the audit log and a signed checkpoint of its head.
If that transaction fails, the files it wrote are removed again. ``verify_file`` checks a
PDF against the certificates pinned in the workspace's audit log, its Certificate rows and
its log (reports/verify_policy.py); ``verify_offline`` against given certificates only.
No Qt, no torch.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from reports.certificate_facts import check_certifiable, gather
from reports.checkpoints import checkpointed
from reports.key_admin import command_signing_identity
from reports.keys import SigningIdentity
from reports.manifest import build_manifest, canonical_json, new_certificate_id
from reports.reasons import explain
from reports.signing import WrittenCertificate, write_certificate
from storage import certificates
from storage.errors import NotFoundError, UnpromptError
from storage.requests import get_request
from storage.settings import get_setting
from storage.workspace import Workspace

Progress = Callable[[float, str], None]


def certify(ws: Workspace, request_id: int | str, out: str | Path, *, operator: str,
            passphrase: bytes, overwrite: bool = False,
            progress: Progress | None = None) -> dict[str, Any]:
    """Issue the signed certificate of one request; returns what was written and recorded."""
    steps = certify_steps(ws, request_id, out, operator=operator, passphrase=passphrase,
                          overwrite=overwrite)
    while True:
        try:
            fraction, message = next(steps)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(fraction, message)


def certify_steps(ws: Workspace, request_id: int | str, out: str | Path, *, operator: str,
                  passphrase: bytes, overwrite: bool = False
                  ) -> Generator[tuple[float, str], None, dict[str, Any]]:
    """``certify`` as a generator of ``(fraction, message)``; returns the result."""
    out = _pdf_path(out)
    yield 0.0, "gathering the facts from the registry"
    with ws.sessions() as session:
        facts, charts = gather(session, request_id, new_certificate_id())
        tsa_url = get_setting(session, "tsa_url") or None
    yield 0.2, "opening the signing key"
    with command_signing_identity(ws, passphrase, operator) as identity:
        manifest = build_manifest(facts)
        yield 0.4, "rendering and signing the PDF" + (" (with a timestamp)" if tsa_url else "")
        written = write_certificate(out, manifest, charts, identity, overwrite=overwrite,
                                    timestamp_url=tsa_url)
        yield 0.8, "recording the certificate"
        archive = _archive(ws, written)
        try:
            _record(ws, facts["request"]["id"], manifest, written, archive, operator,
                    bool(tsa_url), identity)
        except BaseException:
            _remove([written.pdf_path, written.json_path, *archive])
            raise
    yield 1.0, "certificate issued"
    return {"certificate_id": written.certificate_id, "request": facts["request"]["id"],
            "status": "certified", "pdf": str(written.pdf_path),
            "json": str(written.json_path), "stored_copy": str(archive[0]),
            "manifest_sha256": written.manifest_sha256, "pdf_sha256": written.pdf_sha256,
            "signer": identity.subject, "signer_fingerprint": written.signer_fingerprint,
            "timestamped": bool(tsa_url), "erasure_kind": manifest["erasure"]["kind"],
            "mechanism": manifest["erasure"].get("mechanism", "parameter-deletion"),
            "audit_passed": (manifest["audit"] or {}).get("passed")}


def certify_job(workspace_root: str, request_id: int, out: str, operator: str,
                passphrase: str, overwrite: bool = False
                ) -> Generator[dict[str, Any], None, dict[str, Any]]:
    """``certify`` as a job for the engine worker (yields progress dicts).

    The first parameter is deliberately not named ``workspace``: the worker records the
    keyword arguments of such jobs in the Job table, and the passphrase must never be
    stored."""
    ws = Workspace.open(workspace_root)
    try:
        steps = certify_steps(ws, request_id, out, operator=operator,
                              passphrase=passphrase.encode("utf-8"), overwrite=overwrite)
        while True:
            try:
                fraction, message = next(steps)
            except StopIteration as stop:
                return stop.value
            yield {"fraction": fraction, "message": message}
    finally:
        ws.close()


def precheck(ws: Workspace, request_id: int | str) -> None:
    """Refuse early (before asking for a passphrase) a request that cannot be certified."""
    with ws.sessions() as session:
        check_certifiable(session, get_request(session, request_id))


def verify_file(ws: Workspace, path: str | Path, trust_files: tuple[str, ...] = ()
                ) -> dict[str, Any]:
    """Verify a certificate PDF: signature, signer pinned in the audit log (or given with
    ``trust_files`` for this check only), manifest, registry, expiry and revocation."""
    from reports.verify_policy import verify_in_workspace

    data = _read_pdf(path)
    extra = [_read_certificate(f) for f in trust_files]
    result, notes = verify_in_workspace(ws, data, extra)
    return _present(Path(path), result, notes)


def verify_offline(path: str | Path, trust_files: tuple[str, ...]) -> dict[str, Any]:
    """Verify with no workspace (an auditor with the PDF and the issuer's public key):
    signature, signer among ``trust_files`` and manifest. Nothing is created or written."""
    from reports.keys import certificate_fingerprint
    from reports.verify import verify_certificate_pdf
    from reports.verify_policy import timestamp_note

    if not trust_files:
        raise UnpromptError("--offline needs the issuer's certificate: --trust KEY.pem")
    data = _read_pdf(path)
    certs = [_read_certificate(f) for f in trust_files]
    result = verify_certificate_pdf(data, certs)
    notes = ["Offline: checked against the given certificate only; the issuing "
             "workspace's registry, audit log and key revocations were not consulted."]
    signer = next((c for c in certs if certificate_fingerprint(c)
                   == result.details.get("signer_fingerprint")), None)
    notes += timestamp_note(result, signer)
    return _present(Path(path), result, notes)


def _present(path: Path, result: Any, notes: list[str]) -> dict[str, Any]:
    out = {"file": str(path), **result.to_json(), "notes": notes}
    out["explanations"] = [explain(r, result.details) for r in result.reasons]
    out["summary"] = _summary(result.manifest)
    return out


def _read_pdf(path: str | Path) -> bytes:
    from reports.verify import MAX_PDF_BYTES

    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path} does not exist")
    if not path.is_file():
        raise UnpromptError(f"{path} is not a file")
    try:
        with path.open("rb") as handle:  # bounded: a huge file is a verdict, not a stall
            return handle.read(MAX_PDF_BYTES + 1)
    except OSError as exc:
        raise UnpromptError(f"cannot read {path}: {exc.strerror}") from exc


def _read_certificate(path: str | Path) -> Any:
    from reports.key_admin import _read
    from reports.keys import parse_certificate

    return parse_certificate(_read(path))


def _summary(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the certificate claims, for display next to the verdict (``claim``: in words)."""
    if not isinstance(manifest, dict):
        return None
    try:
        scope, erasure = manifest["scope"], manifest["erasure"]
        what = (", ".join(c["name"] for c in scope.get("classes", []))
                if scope.get("kind") == "classes" else f"rule {scope.get('rule')}")
        mechanism = erasure.get("mechanism", "parameter-deletion")
        model, day = manifest["model"]["name"], manifest["timeline"]["executed_at"][:10]
        claim = (f"{what} suppressed at inference in {model} since {day}; the model's weights "
                 "are unchanged" if mechanism == "inference-guard"
                 else f"{what} erased from {model} on {day}, {erasure['kind']} erasure")
        return {"request": manifest["request"]["id"], "model": model, "erased": what,
                "erasure_kind": erasure["kind"], "mechanism": mechanism, "claim": claim,
                "executed_at": manifest["timeline"]["executed_at"],
                "certified_at": manifest["timeline"]["certified_at"]}
    except (KeyError, TypeError, AttributeError):
        return None


def _pdf_path(out: str | Path) -> Path:
    path = Path(out).expanduser()
    if path.suffix.lower() != ".pdf":
        raise UnpromptError(f"{path} does not end in .pdf; name the certificate FILE.pdf")
    if path.is_dir():
        raise UnpromptError(f"{path} is a folder; name the certificate FILE.pdf")
    return path.absolute()


def _archive(ws: Workspace, written: WrittenCertificate) -> list[Path]:
    """A copy of PDF and JSON under <workspace>/certificates/<id>.pdf (unless written there)."""
    folder = ws.certificates_dir
    folder.mkdir(parents=True, exist_ok=True)
    pdf = folder / f"{written.certificate_id}.pdf"
    if pdf == written.pdf_path:
        return [pdf]
    copies = [pdf, pdf.with_suffix(".json")]
    try:
        for source, target in zip((written.pdf_path, written.json_path), copies, strict=True):
            shutil.copyfile(source, target)
    except OSError as exc:
        _remove([written.pdf_path, written.json_path, *copies])
        raise UnpromptError(f"could not keep a copy in {folder}: {exc.strerror}") from exc
    return copies


def _record(ws: Workspace, request_id: int, manifest: dict[str, Any],
            written: WrittenCertificate, archive: list[Path], operator: str,
            timestamped: bool, identity: SigningIdentity) -> None:
    """Record the certificate and checkpoint the log head that includes it, in one
    transaction (reports/checkpoints.py)."""
    occasion = {"kind": "certificate", "certificate": written.certificate_id}
    with checkpointed(ws, identity, operator, occasion) as pending:
        session = pending.session
        request = get_request(session, request_id)
        check_certifiable(session, request)  # nobody certified it meanwhile
        certificates.record_certificate(
            session, request=request, certificate_id=written.certificate_id,
            manifest_text=canonical_json(manifest).decode("utf-8"),
            manifest_sha256=written.manifest_sha256, pdf_sha256=written.pdf_sha256,
            pdf_path=str(archive[0]), signer_fingerprint=written.signer_fingerprint,
            operator=operator, timestamped=timestamped)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
