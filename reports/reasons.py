"""Verification reasons (reports/verify.py) in plain words, for the CLI and the GUI."""

from __future__ import annotations

from typing import Any

NOT_A_CERTIFICATE = frozenset({"file-too-large", "not-a-pdf", "manifest-missing",
                               "manifest-unreadable", "manifest-schema-invalid"})
REASONS = {
    "file-too-large": "The file is far larger than any certificate; it was not read.",
    "not-a-pdf": "The file is not a PDF document (or it is too damaged to read).",
    "unsigned": "The document carries no digital signature.",
    "multiple-signatures": "The document carries more than one signature; a certificate "
                           "is signed exactly once.",
    "signature-invalid": "The digital signature does not match the document: it was "
                         "altered after signing, or the signature itself is damaged.",
    "modified-after-signing": "Content was added to the document after it was signed.",
    "untrusted-signer": "It was signed by a key this workspace does not trust. If it comes "
                        "from a partner organisation, pin their certificate with "
                        "`keys trust FILE.pem` first.",
    "signer-certificate-expired": "The signing certificate was not valid at the time of "
                                  "signing (expired or not yet valid).",
    "signer-certificate-rejected": "The signing certificate is not acceptable for signing "
                                   "documents (its key usage or validity is wrong).",
    "signer-key-revoked": "The signing key was revoked (`keys revoke`) and nothing proves "
                          "that this certificate was signed before the revocation.",
    "manifest-missing": "The document holds no certificate manifest: it is not an Unprompt "
                        "erasure certificate.",
    "manifest-unreadable": "The attached manifest cannot be read as JSON.",
    "manifest-schema-invalid": "The attached manifest does not follow the certificate "
                               "schema: this is not a valid Unprompt certificate.",
    "manifest-hash-missing": "The signed metadata does not record the manifest's SHA-256.",
    "manifest-hash-mismatch": "The attached manifest differs from the one whose SHA-256 "
                              "was signed.",
    "certificate-id-mismatch": "The certificate id in the signed metadata differs from the "
                               "one in the manifest.",
    "not-in-registry": "This workspace's registry has no record of this certificate (it was "
                       "issued elsewhere, or its record was removed).",
    "registry-unavailable": "The registry could not be read to cross-check the certificate.",
    "registry-mismatch": "The registry's record of this certificate differs from the "
                         "document",
    "rule-missing": "The forget rule that enforced this erasure no longer exists in the "
                    "registry: the language model answers the topic again.",
    "rule-disabled": "The forget rule that enforces this erasure is disabled: the language "
                     "model answers the topic again.",
    "rule-retrained": "The forget rule was retrained or changed after this certificate was "
                      "issued: the guard now in force is not the one this certificate "
                      "describes and audited (audit the new version with `guard eval`).",
}


def explain(reason: str, details: dict[str, Any] | None = None) -> str:
    """One plain sentence for a verification reason."""
    text = REASONS.get(reason, f"Verification failed: {reason}.")
    if reason == "registry-mismatch":
        fields = ", ".join((details or {}).get("registry_mismatch") or []) or "some fields"
        text = f"{text} ({fields.replace('_', ' ')})."
    if reason == "manifest-schema-invalid":
        text = f"{text} {(details or {}).get('schema_error') or ''}".rstrip()
    rule = (details or {}).get("rule") or {}
    if reason == "rule-retrained" and rule:
        text = (f"{text} (certified: version {rule.get('certified_version')}; now: version "
                f"{rule.get('current_version')})")
    return text


def headline(valid: bool, reasons: list[str]) -> str:
    """The verdict in words: a file that is no Unprompt certificate at all says so."""
    if valid:
        return "VALID"
    if NOT_A_CERTIFICATE.intersection(reasons):
        return "NOT VALID (not a valid Unprompt certificate)"
    return "NOT VALID"
