"""Crafted and damaged files get a verdict from ``verify``, never an exception (issue 14.9).

Mutated manifests (wrong JSON types at every top-level field and in the parts the registry
check reads), truncated and bit-flipped PDFs, random bytes and an over-large file. Seeded, so
a failure reproduces; each case is bounded in size and runs in well under a second.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from reports.certify_service import verify_file
from reports.keys import SigningIdentity
from reports.manifest import validate_manifest
from reports.pdf_certificate import INFO_ID, INFO_SHA, MANIFEST_NAME
from reports.reasons import NOT_A_CERTIFICATE, REASONS, explain, headline
from reports.signing import sign_pdf
from reports.verify import MAX_PDF_BYTES, VerifyResult, verify_certificate_pdf
from storage.errors import UnpromptError
from storage.workspace import Workspace

WRONG_VALUES: list[Any] = [[], {}, "", "x", 0, -1, 1.5, True, None, [{}], {"a": []}]
CRAFTED = [b"[]", b"{}", b'"text"', b"1", b"null", b"1e999", b"NaN", b"\xff\xfe", b"",
           b"[" * 100_000, b'{"a":' * 50_000, b'{"schema":"unprompt.cert/2","request":"x"}']


def registry(_certificate_id: str) -> dict[str, Any]:
    """A registry record that makes the registry and rule checks read every field."""
    return {"manifest_sha256": "0" * 64, "rule": {"status": "active", "version": 1}}


def check(pdf: bytes, identity: SigningIdentity) -> VerifyResult:
    result = verify_certificate_pdf(pdf, [identity.certificate], registry)
    assert isinstance(result, VerifyResult)
    assert not result.valid and result.reasons
    assert set(result.reasons) <= set(REASONS), result.reasons
    for reason in result.reasons:
        explain(reason, result.details)
    json.dumps(result.to_json(), default=str)
    return result


def embed(pdf: bytes, raw: bytes, certificate_id: str = "UC-X") -> bytes:
    """``pdf`` with its attached manifest replaced by ``raw`` and the signed metadata made to
    match it, as a forger holding a trusted key would do before signing."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    index = [str(names[i]) for i in range(0, len(names), 2)].index(MANIFEST_NAME)
    ref = names[2 * index + 1].get_object()["/EF"].raw_get("/F")
    stream = ref.get_object()
    stream._data, stream._encoded_data = raw, None
    writer.mark_update(ref)
    info_ref = writer.trailer.raw_get("/Info")
    info = info_ref.get_object()
    info[INFO_SHA] = generic.TextStringObject(hashlib.sha256(raw).hexdigest())
    info[INFO_ID] = generic.TextStringObject(certificate_id)
    writer.mark_update(info_ref)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def mutations(manifest: dict, rng: random.Random, count: int) -> list[dict]:
    """The manifest with one field (top level, or one level down) given a value of another
    type, or removed."""
    paths = [(k,) for k in manifest]
    paths += [(k, sub) for k in ("request", "scope", "timeline", "erasure", "audit_log_head")
              for sub in manifest[k]]
    paths += [("guard",), ("extra",)]
    out = []
    for _ in range(count):
        forged = copy.deepcopy(manifest)
        path = rng.choice(paths)
        parent = forged
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.15:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = rng.choice(WRONG_VALUES)
        out.append(forged)
    return out


@pytest.mark.parametrize("raw", CRAFTED, ids=lambda r: repr(r[:12]))
def test_crafted_manifest_signed_by_a_trusted_key_is_a_verdict(
        raw: bytes, unsigned_pdf: bytes, identity: SigningIdentity) -> None:
    result = check(sign_pdf(embed(unsigned_pdf, raw), identity), identity)
    assert NOT_A_CERTIFICATE.intersection(result.reasons), result.reasons
    assert headline(False, result.reasons).endswith("(not a valid Unprompt certificate)")


def test_mutated_manifests_are_verdicts(unsigned_pdf: bytes, manifest: dict,
                                        identity: SigningIdentity) -> None:
    rng = random.Random(14_9)
    for forged in mutations(manifest, rng, 60):
        raw = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
        result = check(embed(unsigned_pdf, raw), identity)  # unsigned: fast, same parsing
        assert ("manifest-schema-invalid" in result.reasons) == (not schema_valid(forged))


def schema_valid(manifest: dict) -> bool:
    try:
        validate_manifest(manifest)
    except UnpromptError:
        return False
    return True


def test_truncated_and_flipped_pdfs_are_verdicts(signed_pdf: bytes,
                                                 identity: SigningIdentity) -> None:
    rng = random.Random(14_10)
    cuts = sorted({0, 1, 5, 6, 100, len(signed_pdf) - 1,
                   *(rng.randrange(len(signed_pdf)) for _ in range(25))})
    for cut in cuts:
        check(signed_pdf[:cut], identity)
    for _ in range(25):
        data = bytearray(signed_pdf)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        check(bytes(data), identity)


def test_random_bytes_are_verdicts(identity: SigningIdentity) -> None:
    rng = random.Random(14_11)
    for size in (0, 1, 7, 64, 4096, 200_000):
        noise = rng.randbytes(size)
        assert check(noise, identity).reasons == ["not-a-pdf"] or size == 0
        check(b"%PDF-1.7\n" + noise, identity)


def test_over_large_file_is_not_read(signed_pdf: bytes, identity: SigningIdentity,
                                     tmp_path: Path) -> None:
    huge = signed_pdf + b"\0" * (MAX_PDF_BYTES + 1 - len(signed_pdf))
    assert check(huge, identity).reasons == ["file-too-large"]
    appended = signed_pdf + b"%%junk\n" * 100_000  # big but allowed: modified after signing
    assert not check(appended, identity).valid
    sparse = tmp_path / "huge.pdf"
    with sparse.open("wb") as handle:  # 1 GiB on paper, no disk used; only 64 MiB is read
        handle.write(signed_pdf)
        handle.truncate(1 << 30)
    ws = Workspace.open(tmp_path / "ws")
    try:
        out = verify_file(ws, sparse)
    finally:
        ws.close()
    assert out["reasons"] == ["file-too-large"] and not out["valid"]


def test_cli_says_not_a_valid_certificate(unsigned_pdf: bytes, tmp_path: Path) -> None:
    """The reported crash: a signed PDF whose manifest.json is ``[]`` (exit 3 before)."""
    from reports.keys import ensure_signing_key
    from tests.cli.helpers import call_cli

    ws = Workspace.open(tmp_path / "ws")
    try:
        pdf = tmp_path / "crafted.pdf"
        pdf.write_bytes(sign_pdf(embed(unsigned_pdf, b"[]"), ensure_signing_key(
            ws.keys_dir, b"pass phrase")))
    finally:
        ws.close()
    result = call_cli("verify", str(pdf), "--workspace", str(tmp_path / "ws"))
    assert result.returncode == 1 and "internal error" not in result.stderr, result.stderr
    assert "not a valid Unprompt certificate" in result.stdout
    assert "manifest-schema-invalid" in result.stdout
