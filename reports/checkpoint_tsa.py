"""RFC 3161 timestamps of log checkpoints, when the ``tsa_url`` setting names an authority.

A checkpoint's own ``signed_at`` is the workspace's word; a timestamp token from an
independent authority proves that the checkpoint (and so every entry up to its head)
existed at the token's time. The token covers the SHA-256 of the checkpoint file and is kept
next to it as ``<checkpoint>.tsr``; a ``log.checkpoint.timestamped`` entry references it. It
is fetched after the checkpoint's transaction has committed (a network call never holds the
registry's write lock), and a failure leaves the checkpoint valid without a timestamp. The
authority's certificate must be pinned with `keys trust` for the token to count.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

from storage import auditlog
from storage.errors import UnpromptError
from storage.workspace import Workspace

ACTION = "log.checkpoint.timestamped"
SUFFIX = ".tsr"


def timestamp_request(digest: bytes) -> Any:
    """The RFC 3161 TimeStampReq for a SHA-256 digest (with a nonce, asking for the TSA's
    certificates)."""
    from pyhanko.sign.timestamps.api import TimeStamper

    _, request = TimeStamper(include_nonce=True).request_cms(digest, "sha256")
    return request


def fetch_token(url: str, digest: bytes) -> bytes:
    """Ask the authority at ``url`` for a token over ``digest`` (DER ContentInfo)."""
    from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

    stamper = RequestsHTTPTimeStamper(url, timeout=10)
    try:
        token = asyncio.run(stamper.async_timestamp(digest, "sha256"))
    except Exception as exc:  # network and protocol errors: one sentence for the operator
        raise UnpromptError(f"the timestamp authority {url} did not answer with a token: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                            ) from exc
    return token.dump()


def stamp(ws: Workspace, checkpoint_path: Path, url: str, operator: str) -> dict[str, Any]:
    """Timestamp a written checkpoint: write ``.tsr`` atomically, then log it."""
    from reports.signing import write_file

    digest = hashlib.sha256(checkpoint_path.read_bytes()).digest()
    token = fetch_token(url, digest)
    path = checkpoint_path.with_name(checkpoint_path.name + SUFFIX)
    write_file(path, token)
    try:
        with ws.sessions.begin() as session:
            auditlog.append(session, operator, ACTION, {
                "file": checkpoint_path.name, "token_sha256": hashlib.sha256(token).hexdigest(),
                "tsa_url": url})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return {"token": path.name}


def token_time(token: bytes, checkpoint_bytes: bytes, trusted: list[Any]) -> dt.datetime:
    """The time a token proves for a checkpoint file; UnpromptError when it does not
    cover the file, is damaged, or its authority does not chain to a trusted certificate."""
    from asn1crypto import cms
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    from reports.verify import _quiet_pyhanko

    digest = hashlib.sha256(checkpoint_bytes).digest()
    roots = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in trusted]
    context = ValidationContext(trust_roots=roots, allow_fetching=False,
                                revocation_mode="soft-fail")
    try:
        signed_data = cms.ContentInfo.load(token)["content"]
        with _quiet_pyhanko():
            status = asyncio.run(validate_tst_signed_data(
                signed_data, context, lambda _algorithm: digest))
    except Exception as exc:  # a damaged token fails in many ways; all mean "unusable"
        raise UnpromptError("the timestamp token is damaged or not a timestamp") from exc
    if not (status.get("intact") and status.get("valid")):
        raise UnpromptError("the timestamp token does not cover this checkpoint")
    if status.get("trust_problem_indic") is not None or status.get("validation_path") is None:
        raise UnpromptError("the timestamp authority is not trusted here (pin its "
                            "certificate with `keys trust`)")
    return status["timestamp"]


def maybe_stamp(ws: Workspace, checkpoint_path: Path, operator: str) -> dict[str, Any]:
    """Timestamp the checkpoint when ``tsa_url`` is set; ``{}`` when it is not, and
    ``{"timestamp_error": sentence}`` when the authority fails (the checkpoint stands)."""
    from storage.settings import get_setting

    with ws.sessions() as session:
        url = get_setting(session, "tsa_url") or ""
    if not url:
        return {}
    try:
        return stamp(ws, checkpoint_path, url, operator)
    except UnpromptError as exc:
        return {"timestamp_error": str(exc)}


def proven_time(checkpoint_path: Path, trusted: list[Any]) -> dt.datetime | None:
    """The token's time for a checkpoint file, or None (no token, or not usable)."""
    token = checkpoint_path.with_name(checkpoint_path.name + SUFFIX)
    if not token.is_file():
        return None
    try:
        return token_time(token.read_bytes(), checkpoint_path.read_bytes(), trusted)
    except (OSError, UnpromptError):
        return None
