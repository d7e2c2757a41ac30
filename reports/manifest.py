"""The certificate manifest: what a certificate attests, as canonical, schema-checked JSON.

A manifest names its schema version in ``schema``; validation picks the JSON Schema shipped
for that version (``reports/schema/``), so certificates issued under ``unprompt.cert/1``
(image classes only) and ``unprompt.cert/2`` (adding forget rules of guarded language
models, section ``guard``) still verify now that ``unprompt.cert/3`` (the erasure kinds
exact / isolated / approximate / suppressed, docs/design.md section 4.3) is the one
issued; a cert/2 ``exact`` keeps its old meaning there. The SHA-256 of the
canonical JSON is the manifest's identity: printed and QR-encoded in the PDF, stored in a
signed PDF metadata field, and recorded in the registry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sys
from functools import cache
from importlib import metadata, resources
from typing import Any

from storage.errors import UnpromptError

CURRENT_SCHEMA = "unprompt.cert/3"
SCHEMA_FILES = {"unprompt.cert/1": "cert-1.json", "unprompt.cert/2": "cert-2.json",
                "unprompt.cert/3": "cert-3.json"}
TIMESTAMP_FIELDS = ("received_at", "due_at", "approved_at", "executed_at", "verified_at",
                    "certified_at", "suppressed_at", "exact_at")
SOFTWARE_PACKAGES = ("unprompt", "reportlab", "pyHanko", "cryptography")


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8, no NaN: the bytes that get hashed."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UnpromptError(f"The certificate manifest is not plain JSON data: {exc}.") from exc
    return text.encode("utf-8")


def manifest_sha256(manifest: dict[str, Any]) -> str:
    """SHA-256 (hex) of the manifest's canonical JSON."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


def new_certificate_id(now: dt.datetime | None = None) -> str:
    """A fresh certificate id such as ``UC-20261123-9F2C4A1B07``."""
    day = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d")
    return f"UC-{day}-{secrets.token_hex(5).upper()}"


def build_manifest(facts: dict[str, Any]) -> dict[str, Any]:
    """A validated manifest (schema ``CURRENT_SCHEMA``) from the registry's facts.

    Adds ``schema``; normalises timeline timestamps (datetimes or ISO strings, naive means
    UTC) to ``YYYY-MM-DDTHH:MM:SSZ``; sets ``timeline.certified_at`` to now when absent,
    ``audit`` to null when absent, and completes ``software`` with the versions of this
    installation. Raises ``UnpromptError`` naming the first problem.
    """
    rest = {k: v for k, v in facts.items() if k not in ("schema", "timeline")}
    manifest = json.loads(canonical_json(rest))  # a deep, JSON-only copy
    manifest["schema"] = CURRENT_SCHEMA
    manifest.setdefault("audit", None)
    manifest["timeline"] = _timeline(facts.get("timeline"))
    manifest["software"] = {**software_versions(), **dict(facts.get("software") or {})}
    validate_manifest(manifest)
    return manifest


def validate_manifest(manifest: Any) -> None:
    """Check a manifest against the schema its ``schema`` field names."""
    if not isinstance(manifest, dict):
        raise UnpromptError("The certificate manifest is not a JSON object.")
    version = manifest.get("schema")
    if not isinstance(version, str) or version not in SCHEMA_FILES:
        raise UnpromptError(f"Unknown certificate manifest schema {version!r}; "
                            f"known: {', '.join(SCHEMA_FILES)}.")
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(version))
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise UnpromptError(f"The certificate manifest is invalid at {where}: {error.message}.")


@cache
def load_schema(version: str = CURRENT_SCHEMA) -> dict[str, Any]:
    """The JSON Schema of a manifest version, read from the package data."""
    text = resources.files("reports.schema").joinpath(SCHEMA_FILES[version]).read_text("utf-8")
    return json.loads(text)


def software_versions() -> dict[str, str]:
    """Versions of Python and the packages that produce a certificate."""
    found = {"python": sys.version.split()[0]}
    for name in SOFTWARE_PACKAGES:
        try:
            found[name.lower()] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found.setdefault("unprompt", "unknown")
    return found


def format_timestamp(value: Any) -> str | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC) from a datetime or ISO 8601 string; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise UnpromptError(f"{value!r} is not an ISO 8601 timestamp.") from exc
    if not isinstance(value, dt.datetime):
        raise UnpromptError(f"{value!r} is not a timestamp.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timeline(given: Any) -> dict[str, Any]:
    if given is None:
        raise UnpromptError("The certificate facts have no timeline.")
    timeline = {k: format_timestamp(v) for k, v in dict(given).items()}
    if timeline.get("certified_at") is None:
        timeline["certified_at"] = format_timestamp(dt.datetime.now(dt.UTC))
    return {k: v for k, v in timeline.items()
            if v is not None or k in ("approved_at", "verified_at")}

