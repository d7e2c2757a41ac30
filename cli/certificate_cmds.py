"""`certify`, `verify`, `certificates` and `keys show / import / trust / revoke`
(docs/design.md 7, 8)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from cli.context import Context, emit, table
from cli.parsing import add_command, add_group
from storage.errors import UnpromptError

PASSPHRASE_ENV = "UNPROMPT_KEY_PASSPHRASE"


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    certify = add_command(commands, parent, "certify",
                          "export the signed PDF certificate of an executed erasure request",
                          cmd_certify)
    certify.add_argument("--request", required=True, metavar="R")
    certify.add_argument("--out", required=True, metavar="FILE.pdf")
    certify.add_argument("--overwrite", action="store_true",
                         help="replace FILE.pdf and FILE.json if they exist")
    verify = add_command(commands, parent, "verify",
                         "verify a certificate: signature, trusted signer, manifest, registry",
                         cmd_verify)
    verify.add_argument("file", metavar="FILE.pdf")
    verify.add_argument("--trust", action="append", default=[], metavar="KEY.pem",
                        help="also trust this issuer certificate, for this check only "
                             "(repeatable; nothing is pinned)")
    verify.add_argument("--offline", action="store_true",
                        help="no workspace: check against --trust only (an auditor with the "
                             "PDF and the issuer's certificate); creates nothing")
    add_command(commands, parent, "certificates", "certificates issued in this workspace",
                cmd_certificates)
    keys = add_group(commands, parent, "keys", "the signing key and trusted certificates")
    add_command(keys, parent, "show", "the signing certificate and the pinned ones",
                cmd_keys_show)
    imp = add_command(keys, parent, "import",
                      "make an organisation's PKCS#12 the signing key (its passphrase "
                      f"becomes the key passphrase; ${PASSPHRASE_ENV} or asked)",
                      cmd_keys_import)
    imp.add_argument("file", metavar="FILE.p12")
    trust = add_command(keys, parent, "trust",
                        "pin a certificate (PEM or DER): certificates it signed verify here",
                        cmd_keys_trust)
    trust.add_argument("file", metavar="FILE.pem")
    revoke = add_command(keys, parent, "revoke",
                         "revoke a compromised key: certificates it signs after this no "
                         "longer verify", cmd_keys_revoke)
    revoke.add_argument("key", metavar="FINGERPRINT|FILE.pem")
    revoke.add_argument("--reason", required=True, metavar="TEXT")


def passphrase(ctx: Context, *, confirm: bool = False) -> bytes:
    """The key passphrase: $UNPROMPT_KEY_PASSPHRASE, else asked on a terminal."""
    from reports.keys import passphrase_from_env

    given = passphrase_from_env()
    if given:
        return given
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UnpromptError(f"the signing key needs a passphrase: set {PASSPHRASE_ENV} "
                            "(no terminal to ask on)")
    first = getpass.getpass("Signing-key passphrase: ", stream=sys.stderr)
    if not first:
        raise UnpromptError("no passphrase given")
    if confirm and getpass.getpass("Repeat it: ", stream=sys.stderr) != first:
        raise UnpromptError("the two passphrases differ; nothing was created")
    return first.encode("utf-8")


def cmd_certify(ctx: Context) -> int:
    from reports.certify_service import certify, precheck
    from reports.key_admin import has_signing_key

    ws, a = ctx.workspace, ctx.args
    precheck(ws, a.request)
    secret = passphrase(ctx, confirm=not has_signing_key(ws))
    result = certify(ws, a.request, a.out, operator=ctx.operator, passphrase=secret,
                     overwrite=a.overwrite, progress=lambda _f, m: ctx.progress(m))
    emit(ctx, result, _render_certify)
    return 0


def _render_certify(r: dict[str, Any]) -> str:
    audit = {True: "audit passed", False: "audit FAILED", None: "no audit verdict"}
    guard = ("; the model's weights are unchanged: the guard must stay enabled"
             if r.get("mechanism") == "inference-guard" else "")
    return (f"Certificate {r['certificate_id']} for request {r['request']} written to "
            f"{r['pdf']} ({r['erasure_kind']} erasure, {audit[r['audit_passed']]}{guard}).\n"
            f"Manifest SHA-256 {r['manifest_sha256']}; a copy is kept at {r['stored_copy']}.")


def cmd_verify(ctx: Context) -> int:
    from reports.certify_service import verify_file, verify_offline

    a = ctx.args
    if a.offline:
        result = verify_offline(a.file, tuple(a.trust))
    else:
        result = verify_file(ctx.workspace, a.file, tuple(a.trust))
    emit(ctx, result, _render_verify)
    return 0 if result["valid"] else 1


def _render_verify(r: dict[str, Any]) -> str:
    from reports.reasons import headline

    notes = [f"note: {n}" for n in r.get("notes") or []]
    if r["valid"]:
        s = r.get("summary") or {}
        return "\n".join([f"VALID: certificate {r.get('certificate_id')} for request "
                          f"{s.get('request')} ({s.get('claim')}), signed by "
                          f"{r.get('signer')}.", *notes])
    lines = [f"{headline(False, r['reasons'])}: {r['file']}"]
    lines += [f"- {code}: {text}" for code, text in zip(r["reasons"], r["explanations"],
                                                       strict=True)]
    return "\n".join(lines + notes)


def cmd_certificates(ctx: Context) -> int:
    from storage.certificates import list_certificates

    with ctx.workspace.sessions() as session:
        rows = list_certificates(session)
    emit(ctx, {"certificates": rows}, _render_certificates)
    return 0


def _render_certificates(result: dict[str, Any]) -> str:
    if not result["certificates"]:
        return "No certificates issued yet."
    rows = [[c["certificate_id"], c["request_id"], c["created_at"][:16].replace("T", " "),
             c["manifest_sha256"][:16] + "…", c["pdf_path"]] for c in result["certificates"]]
    return table(rows, ["certificate", "request", "issued (UTC)", "manifest", "stored copy"])


def cmd_keys_show(ctx: Context) -> int:
    from reports.key_admin import show

    emit(ctx, show(ctx.workspace), _render_keys)
    return 0


def _render_keys(r: dict[str, Any]) -> str:
    signing = r["signing"]
    head = ("No signing key yet (one is generated by the first `certify`)." if not signing
            else f"Signing key: {signing['subject']}\n  SHA-256 {signing['fingerprint']}\n"
                 f"  valid until {signing['not_after'][:10]}; certificate "
                 f"{signing['certificate_file']}"
                 + (f"\n  REVOKED at log entry {signing['revoked']['seq']}: "
                    f"{signing['revoked']['reason']}" if signing.get("revoked") else ""))
    rows = [[t["subject"], t["fingerprint"][:16] + "…", t["not_after"][:10],
             f"entry {t['pinned_in_entry']}",
             f"REVOKED (entry {t['revoked']['seq']})" if t["revoked"] else ""]
            for t in r["trusted"]]
    text = head + "\n\nTrusted signers (pinned in the audit log):\n" + (
        table(rows, ["subject", "SHA-256", "valid until", "pinned", "revoked"]) if rows
        else "none")
    if r["ignored"]:
        text += ("\n\nIgnored (in keys/trusted/ but not pinned in the audit log): "
                 + ", ".join(r["ignored"]))
    return text


def cmd_keys_import(ctx: Context) -> int:
    from reports.key_admin import import_key

    result = import_key(ctx.workspace, ctx.args.file, passphrase(ctx), ctx.operator)
    emit(ctx, result, lambda r: f"Imported: {r['subject']} (SHA-256 {r['fingerprint']}) now "
                                "signs this workspace's certificates.")
    return 0


def cmd_keys_trust(ctx: Context) -> int:
    from reports.key_admin import trust

    result = trust(ctx.workspace, ctx.args.file, ctx.operator)
    emit(ctx, result, lambda r: f"Trusted: {r['subject']} (SHA-256 {r['fingerprint']}).")
    return 0


def cmd_keys_revoke(ctx: Context) -> int:
    from reports.key_admin import revoke

    result = revoke(ctx.workspace, ctx.args.key, ctx.args.reason, ctx.operator)
    emit(ctx, result, lambda r: f"Revoked: SHA-256 {r['fingerprint']} (log entry {r['entry']}"
                                f"); certificates it signs from now on do not verify.")
    return 0
