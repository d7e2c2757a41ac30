"""The manifest: canonical JSON, hash, schema by version, named validation errors."""

from __future__ import annotations

import hashlib
import json

import pytest

from reports.manifest import (
    build_manifest,
    canonical_json,
    manifest_sha256,
    new_certificate_id,
    validate_manifest,
)
from storage.errors import UnpromptError
from tests.reports.sample import sample_facts


def test_build_adds_schema_and_normalises_timestamps(manifest: dict) -> None:
    assert manifest["schema"] == "unprompt.cert/3"
    assert manifest["timeline"]["received_at"] == "2026-11-02T09:14:05Z"
    assert manifest["timeline"]["approved_at"] == "2026-11-20T16:02:11Z"
    assert manifest["software"]["unprompt"] == "0.1.0" and "pyhanko" in manifest["software"]


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", 2.5]}) == '{"a":["é",2.5],"b":1}'.encode()


def test_hash_is_sha256_of_canonical_json(manifest: dict) -> None:
    expected = hashlib.sha256(canonical_json(manifest)).hexdigest()
    assert manifest_sha256(manifest) == expected
    assert manifest_sha256(json.loads(json.dumps(manifest, indent=2))) == expected


@pytest.mark.parametrize("path", [("certificate_id",), ("request", "legal_basis"),
                                  ("residual_scan", "clean"), ("audit_log_head", "hash")])
def test_missing_required_field_is_rejected(path: tuple[str, ...]) -> None:
    facts = sample_facts()
    parent = facts
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(UnpromptError, match=path[-1]):
        build_manifest(facts)


def test_approximate_erasure_needs_its_residual() -> None:
    facts = sample_facts("approximate")
    assert build_manifest(facts)["erasure"]["kind"] == "approximate"
    facts["erasure"]["residual"] = None
    with pytest.raises(UnpromptError, match="residual"):
        build_manifest(facts)


def test_audit_is_optional() -> None:
    facts = sample_facts()
    del facts["audit"]
    assert build_manifest(facts)["audit"] is None


def test_schema_is_chosen_by_the_schema_field(manifest: dict) -> None:
    validate_manifest(manifest)
    with pytest.raises(UnpromptError, match="Unknown certificate manifest schema"):
        validate_manifest({**manifest, "schema": "unprompt.cert/99"})


def test_version_1_certificates_still_validate(manifest: dict) -> None:
    validate_manifest({**manifest, "schema": "unprompt.cert/1"})  # what 0.1 issued
    with pytest.raises(UnpromptError, match="guard"):
        validate_manifest({**manifest, "schema": "unprompt.cert/1", "guard": {}})


def test_scope_decides_which_sections_are_required(manifest: dict) -> None:
    image = {k: v for k, v in manifest.items() if k != "purge"}
    with pytest.raises(UnpromptError, match="purge"):
        validate_manifest(image)
    rule = {**image, "scope": {"kind": "rule", "model": "lm", "rule": "topic"}}
    rule.pop("residual_scan")
    with pytest.raises(UnpromptError, match="guard"):
        validate_manifest(rule)


def test_non_json_facts_are_rejected() -> None:
    with pytest.raises(UnpromptError, match="not plain JSON"):
        build_manifest({**sample_facts(), "operator": {"a", "b"}})


def test_new_certificate_ids_are_unique_and_valid() -> None:
    ids = {new_certificate_id() for _ in range(50)}
    assert len(ids) == 50
    validate_manifest(build_manifest({**sample_facts(), "certificate_id": ids.pop()}))
