"""Keys and a signed certificate, made once per session (key generation and signing take
a second or two; every test reads the bytes and never changes them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.keys import SigningIdentity, ensure_signing_key
from reports.manifest import build_manifest
from reports.pdf_certificate import render_certificate_pdf
from reports.signing import sign_pdf
from tests.reports.chain import build_certified, build_executed
from tests.reports.sample import sample_charts, sample_facts

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws") / "keys"


@pytest.fixture(scope="session")
def identity(keys_dir: Path) -> SigningIdentity:
    return ensure_signing_key(keys_dir, PASSPHRASE)


@pytest.fixture(scope="session")
def other_identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return ensure_signing_key(tmp_path_factory.mktemp("other") / "keys", b"another passphrase")


@pytest.fixture(scope="session")
def manifest() -> dict:
    return build_manifest(sample_facts())


@pytest.fixture(scope="session")
def unsigned_pdf(manifest: dict) -> bytes:
    return render_certificate_pdf(manifest, sample_charts(), signer="CN=test")


@pytest.fixture(scope="session")
def signed_pdf(unsigned_pdf: bytes, identity: SigningIdentity) -> bytes:
    return sign_pdf(unsigned_pdf, identity)


@pytest.fixture(scope="session")
def executed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Request 1 executed and audited (tests/reports/chain.py); request 2 only received."""
    return build_executed(tmp_path_factory)


@pytest.fixture(scope="session")
def certified(executed_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of ``executed_root`` with request 1 certified through the CLI."""
    return build_certified(executed_root, tmp_path_factory)
