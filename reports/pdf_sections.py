"""The certificate's numbered sections, each a list of reportlab flowables.

Everything here reads a validated manifest (reports/manifest.py) and writes for a
data-protection officer: plain sentences first, the exact figures and hashes after.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer

from reports import pdf_guard
from reports.pdf_audit import audit_section, residual_table  # noqa: F401 - re-exported
from reports.pdf_style import FRAME_WIDTH, b, fonts, grid_table, key_value_table, markup, p
from storage.artifact_store import LOCAL, overwrites, purge_scope
from storage.erasure_kinds import EXACT, ISOLATED, describe, needs_residual
from storage.scan_proofs import coverage_text

ORDER = ("removed", "replaced", "added", "unchanged")


def verdict_sentence(m: dict[str, Any]) -> str:
    """The certificate's claim in one plain sentence."""
    if pdf_guard.is_guard(m):
        return pdf_guard.verdict_sentence(m)
    scope, model = m["scope"], m["model"]["name"]
    day = m["timeline"]["executed_at"][:10]
    if scope["kind"] == "classes":
        names = [c["name"] for c in scope["classes"]]
        noun, verb = ("Class", "was") if len(names) == 1 else ("Classes", "were")
        return f"{noun} {_quoted(names)} {verb} erased from model '{model}' on {day}."
    if m["erasure"].get("mechanism") == "retrain":  # a person of a fine-tuned model
        day = (m["timeline"].get("exact_at") or m["timeline"]["executed_at"])[:10]
        return (f"The records of the data subject behind forget rule '{scope['rule']}' were "
                f"erased from model '{model}' on {day}.")
    return (f"The topic of forget rule '{scope['rule']}' was erased from the answers of "
            f"model '{model}' on {day}.")


def kind_sentence(m: dict[str, Any]) -> str:
    """The kind and its one-line description (docs/design.md section 4.3); an isolated or
    approximate kind with the headline residual figures."""
    if pdf_guard.is_guard(m):
        return pdf_guard.kind_sentence(m)
    if m["erasure"].get("mechanism") == "retrain":
        return ("Erasure kind: exact. The model was retrained without the erased data and "
                "every earlier version was purged.")
    kind = m["erasure"]["kind"]
    if not needs_residual(kind):
        return f"Erasure kind: {kind}. {describe(kind)}"
    found = residual_headline(m["erasure"].get("residual") or {})
    measured = f" Measured residual: {found}." if found else ""
    return f"Erasure kind: {kind}. {describe(kind)}{measured} Details in section 2."


def residual_headline(residual: dict[str, Any]) -> str:
    """The relearn gap and MIA efficacy against the retrain reference, in words (the
    label-free top-1 figure where SalUn's is degenerate)."""
    parts = []
    gap = residual.get("relearn_largest_gap")
    if isinstance(gap, int | float):
        parts.append(f"relearn accuracy up to {gap * 100:.1f} pp from the retrain reference")
    degenerate = residual.get("mia_efficacy_degenerate") or residual.get(
        "reference_mia_efficacy_degenerate")
    key, what = (("mia_efficacy_top1", "label-free MIA efficacy") if degenerate
                 else ("mia_efficacy", "MIA efficacy"))
    mia, ref = residual.get(key), residual.get(f"reference_{key}")
    if isinstance(mia, int | float):
        vs = f" (reference {ref * 100:.1f}%)" if isinstance(ref, int | float) else ""
        parts.append(f"{what} {mia * 100:.1f}%{vs}")
    return "; ".join(parts)


def warning_sentence(m: dict[str, Any]) -> str | None:
    """What undermines the verdict, if anything: leftover bytes or an unfinished purge."""
    if pdf_guard.is_guard(m):
        return None
    problems = []
    if not m["residual_scan"]["clean"]:
        problems.append("the residual scan found removed parameter bytes still stored")
    if m["purge"].get("complete") is False:
        problems.append("the purge is not complete")
    if not problems:
        return None
    return f"Warning: {' and '.join(problems)} (section 4)."


def _subject_scheme(req: dict[str, Any]) -> str:
    """How the reference was hashed, in words (certificates before the keyed hash: salted)."""
    if req.get("subject_ref_scheme") == "hmac-sha256":
        return "HMAC-SHA256 of the reference under the workspace's secret subject key"
    return "salted SHA-256 of the reference"


def request_section(m: dict[str, Any]) -> list[Flowable]:
    req, t = m["request"], m["timeline"]
    rows = [("Request", f"#{req['id']}"),
            ("Data subject", [p(f"pseudonymised: {_subject_scheme(req)}", "cell"),
                              p(req["subject_ref_sha256"], "hash")]),
            ("Legal basis", req["legal_basis"])]
    if req.get("requested_by"):
        rows.append(("Recorded by", req["requested_by"]))
    events = [("Received", t.get("received_at"), ""),
              ("Due", t.get("due_at"), "30 days after receipt (GDPR Art. 12(3))"),
              ("Approved", t.get("approved_at"), f"by {m['approver']}" if m["approver"] else ""),
              ("Executed", t.get("executed_at"), f"by {m['operator']}"),
              ("Suppressed", t.get("suppressed_at"), "no longer reachable in the model"),
              ("Exact", t.get("exact_at"), "retrain-equivalent"),
              ("Verified", t.get("verified_at"), "audit recorded"),
              ("Certified", t.get("certified_at"), "this certificate")]
    timeline = grid_table(["Event", "Date and time (UTC)", "Notes"],
                          [[e, _when(v), n] for e, v, n in events if v],
                          [30 * mm, 50 * mm, FRAME_WIDTH - 80 * mm])
    return [_h1("1. The request"), key_value_table(rows), Spacer(1, 8),
            p("Timeline", "h2"), timeline, Spacer(1, 4), p(_deadline_sentence(t), "body")]


def erasure_section(m: dict[str, Any]) -> list[Flowable]:
    scope, method, erasure = m["scope"], m["method"], m["erasure"]
    what = (", ".join(_class_label(c) for c in scope["classes"]) if scope["kind"] == "classes"
            else f"forget rule '{scope['rule']}'")
    rows = [("Scope", what), ("Method", method["name"])]
    rows += [(label, method[key]) for key, label in
             (("description", "What was done"), ("training_mode", "Training mode"),
              ("reference", "Published method")) if method.get(key)]
    out = [_h1("2. What was erased, and how"), key_value_table(rows), Spacer(1, 6),
           markup(f"{b(kind_sentence(m))} {_kind_explanation(m)}")]
    if erasure.get("note"):
        out.append(p(erasure["note"], "small"))
    if needs_residual(erasure["kind"]):
        out += [p("Measured residual", "h2"), residual_table(erasure["residual"])]
    return out


def artifacts_section(m: dict[str, Any]) -> list[Flowable]:
    model, art = m["model"], m["artifacts"]
    versions = f"version {model.get('version_before', '?')} before, {model['version_after']} after"
    rows = [("Model", model["name"]), ("Versions", versions)]
    rows += [(k.capitalize(), model[k]) for k in ("kind", "backbone") if model.get(k)]
    table = grid_table(["Artifact", "SHA-256", "Status"], _artifact_rows(art),
                       [38 * mm, 106 * mm, FRAME_WIDTH - 144 * mm])
    return [_h1("3. Model and stored artifacts"), key_value_table(rows), Spacer(1, 8), table]


def purge_section(m: dict[str, Any]) -> list[Flowable]:
    purge, scan = m["purge"], m["residual_scan"]
    done = "complete" if purge.get("complete", True) else "NOT complete (resumes at start-up)"
    n = len(purge["purged"])
    store = purge.get("store") or LOCAL
    verb = "overwritten and deleted" if overwrites(store) else \
        "deleted from the workspace's live files"
    out = [_h1("4. Purge and residual scan"),
           p(f"{_count(n, 'stored artifact')} that held the erased parameters "
             f"{'was' if n == 1 else 'were'} {verb}; only the hashes remain, "
             f"as tombstones. Purge {done}.")]
    out += [p(sha, "hash") for sha in purge["purged"]]
    out += [Spacer(1, 6), markup(_scan_sentence(scan)), Spacer(1, 4),
            p(purge_scope(store), "small")]
    if scan.get("hits"):
        out.append(grid_table(["File", "Pattern"],
                              [[str(h.get("file")), str(h.get("pattern"))] for h in scan["hits"]],
                              [130 * mm, FRAME_WIDTH - 130 * mm]))
    return out


def accountability_section(m: dict[str, Any], number: int = 6) -> list[Flowable]:
    head = m["audit_log_head"]
    rows = [("Operator", m["operator"]), ("Approver", m["approver"] or "none recorded"),
            ("Audit-log head", p(f"entry {head['seq']}, hash {head['hash']}", "hash")),
            ("Software", ", ".join(f"{k} {v}" for k, v in sorted(m["software"].items())))]
    return [_h1(f"{number}. Accountability"), key_value_table(rows), Spacer(1, 4),
            p("The audit-log head fixes the state of the registry's hash-chained log when this "
              "certificate was issued; any later rewrite of earlier entries breaks the chain.",
              "small")]


def verification_section(digest: str, number: int = 7,
                         registry: str | None = None) -> list[Flowable]:
    steps = [
        "The signature: the PDF carries a PAdES signature over the whole file. A PDF reader "
        "shows it in its signature panel; <b>unprompt verify FILE.pdf</b> also requires the "
        "signer certificate to be one of the workspace's pinned trusted certificates.",
        "The manifest: the attached file <b>manifest.json</b> is the canonical record of this "
        f"certificate. Its SHA-256 must equal <font name='{fonts()[1]}' size='7'>{digest}</font>, "
        "printed here, encoded in the QR code and stored in the signed document metadata.",
        registry or "The registry: the certificate id must be on record there with the same "
                    "manifest hash.",
    ]
    return [_h1(f"{number}. How to verify this certificate")] + [
        markup(f"{i}. {s}") for i, s in enumerate(steps, 1)]


def manifest_appendix(m: dict[str, Any]) -> list[Flowable]:
    from reportlab.platypus import XPreformatted

    from reports.pdf_style import styles

    text = json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False)
    return [_h1("Appendix: the manifest"),
            p("The attached manifest.json holds the same data in canonical form (sorted keys, "
              "no spaces); the hash is computed over that form.", "small"),
            XPreformatted(_escape(text), styles()["code"])]


def _h1(text: str) -> Flowable:
    return p(text, "h1")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _quoted(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _class_label(entry: dict[str, Any]) -> str:
    return f"{entry['name']} (label {entry['index']})" if "index" in entry else entry["name"]


def _when(ts: str | None) -> str:
    return "" if not ts else f"{ts[:10]} {ts[11:16]}"


def _days(a: str, b_: str) -> int:
    parse = dt.datetime.fromisoformat
    return (parse(b_.replace("Z", "+00:00")) - parse(a.replace("Z", "+00:00"))).days


def _deadline_sentence(t: dict[str, Any]) -> str:
    took = _days(t["received_at"], t["executed_at"])
    text = f"The erasure was executed {took} day(s) after the request was received"
    if not t.get("due_at"):
        return text + "."
    margin = _days(t["executed_at"], t["due_at"])
    text += (f", {margin} day(s) before it was due." if margin >= 0
             else f", {-margin} day(s) after it was due.")
    if t.get("exact_at") and t["exact_at"] != t["executed_at"]:
        late = _days(t["exact_at"], t["due_at"])
        text += (f" It became exact {_days(t['received_at'], t['exact_at'])} day(s) after "
                 "receipt, " + (f"{late} day(s) before it was due." if late >= 0
                                else f"{-late} day(s) after it was due."))
    return text


def _kind_explanation(m: dict[str, Any]) -> str:
    if m["erasure"].get("mechanism") == "retrain" and m["scope"]["kind"] == "rule":
        return ("The language model was fine-tuned again from its base model without the "
                "person's records, so it never saw them. Every earlier version, whose weights "
                "learned from them, was destroyed, and a scan of the workspace looked for "
                "their bytes.")
    if m["erasure"].get("mechanism") == "retrain":
        return ("The model was rebuilt with the same configuration from its non-erasable "
                "starting point on the recorded data without the erased class, so it is the "
                "retrain reference itself. Every earlier version, whose weights learned from "
                "the erased data, was purged, and a scan of the workspace looked for their "
                "bytes.")
    kind = m["erasure"]["kind"]
    if kind == EXACT:
        return ("Every parameter of this model that learned from the erased data belonged to "
                "it alone, or the model was retrained without it: what remains is what "
                "training without the erased data gives. The erased parameters were deleted "
                "from the model and their stored copies purged (section 4 says what the purge "
                "covers).")
    if kind == ISOLATED:
        return ("The shared weights of this model never trained on erasable data, and the "
                "erased class's own parameters were deleted and their stored copies purged. "
                "The remaining classes' own parameters were trained with its images as "
                "other-class examples, so the model is not what training without it gives; "
                "the residual below measures the difference.")
    return ("Weights shared by all classes were trained on the erased data too. Deleting the "
            "class's own parameters removes it from the model's predictions, but traces may "
            "remain in the shared weights; the residual below measures them.")


def _artifact_rows(art: dict[str, dict[str, str]]) -> list[list[Any]]:
    before, after = art["before"], art["after"]
    rows = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        status = ("unchanged" if old == new else "removed" if new is None
                  else "added" if old is None else "replaced")
        shown = markup(f"{old} (before)<br/>{new}", "hash") if status == "replaced" \
            else p(new or old, "hash")
        cell = markup(f"<font color='#b3261e'>{b(status)}</font>", "cell") \
            if status == "removed" else p(status, "cell")
        rows.append((ORDER.index(status), name, [name, shown, cell]))
    return [row for *_, row in sorted(rows, key=lambda r: r[:2])]


def _scan_sentence(scan: dict[str, Any]) -> str:
    covered = coverage_text(scan)
    if scan["clean"]:
        return (f"{b('Residual scan: clean.')} No file in the workspace contains the bytes of "
                f"a removed parameter tensor: {covered}.")
    return (f"{b('Residual scan: NOT clean.')} {len(scan.get('hits', []))} match(es) of removed "
            f"parameter bytes were found ({covered}):")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
