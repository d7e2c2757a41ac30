"""The certificate's numbered sections, each a list of reportlab flowables.

Everything here reads a validated manifest (reports/manifest.py) and writes for a
data-protection officer: plain sentences first, the exact figures and hashes after.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer, Table

from reports.charts import chart_drawings
from reports.pdf_style import FRAME_WIDTH, b, fonts, grid_table, key_value_table, markup, p

ORDER = ("removed", "replaced", "added", "unchanged")
FIGURES = [  # label, path in the figures object, what a good erasure looks like
    ("Forget accuracy (training images)", ("scorecard", "forget_accuracy"), "about 0%"),
    ("Retained classes, training accuracy", ("scorecard", "retain_accuracy"), "near reference"),
    ("Retained classes, test accuracy", ("scorecard", "test_accuracy"), "near reference"),
    ("MIA efficacy", ("mia_efficacy",), "about 100%"),
    ("Forget distinguishability AUC", ("forget_distinguishability_auc",), "about 50%"),
    ("Loss attack AUC", ("threshold_attacks", "loss", "auc"), "near reference"),
    ("Loss attack TPR at 1% FPR", ("threshold_attacks", "loss", "tpr_at_1pct_fpr"), "low"),
    ("Confidence attack AUC", ("threshold_attacks", "confidence", "auc"), "near reference"),
    ("Entropy attack AUC", ("threshold_attacks", "entropy", "auc"), "near reference"),
    ("Linear probe, erased class", ("linear_probe", "forget_accuracy"), "near reference"),
    ("Relearn accuracy, n = 1", ("relearn", "1"), "near reference"),
    ("Relearn accuracy, n = 5", ("relearn", "5"), "near reference"),
    ("Relearn accuracy, n = 20", ("relearn", "20"), "near reference"),
    ("LiRA AUC", ("lira", "auc"), "about 50%"),
]


def verdict_sentence(m: dict[str, Any]) -> str:
    """The certificate's claim in one plain sentence."""
    scope, model = m["scope"], m["model"]["name"]
    day = m["timeline"]["executed_at"][:10]
    if scope["kind"] == "classes":
        names = [c["name"] for c in scope["classes"]]
        noun, verb = ("Class", "was") if len(names) == 1 else ("Classes", "were")
        return f"{noun} {_quoted(names)} {verb} erased from model '{model}' on {day}."
    return (f"The topic of forget rule '{scope['rule']}' was erased from the answers of "
            f"model '{model}' on {day}.")


def kind_sentence(m: dict[str, Any]) -> str:
    if m["erasure"]["kind"] == "exact":
        return "Erasure kind: exact by construction."
    return "Erasure kind: approximate, with the measured residual reported in section 2."


def warning_sentence(m: dict[str, Any]) -> str | None:
    """What undermines the verdict, if anything: leftover bytes or an unfinished purge."""
    problems = []
    if not m["residual_scan"]["clean"]:
        problems.append("the residual scan found removed parameter bytes still stored")
    if m["purge"].get("complete") is False:
        problems.append("the purge is not complete")
    if not problems:
        return None
    return f"Warning: {' and '.join(problems)} (section 4)."


def request_section(m: dict[str, Any]) -> list[Flowable]:
    req, t = m["request"], m["timeline"]
    rows = [("Request", f"#{req['id']}"),
            ("Data subject", [p("pseudonymised: salted SHA-256 of the reference", "cell"),
                              p(req["subject_ref_sha256"], "hash")]),
            ("Legal basis", req["legal_basis"])]
    if req.get("requested_by"):
        rows.append(("Recorded by", req["requested_by"]))
    events = [("Received", t.get("received_at"), ""),
              ("Due", t.get("due_at"), "30 days after receipt (GDPR Art. 12(3))"),
              ("Approved", t.get("approved_at"), f"by {m['approver']}" if m["approver"] else ""),
              ("Executed", t.get("executed_at"), f"by {m['operator']}"),
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
    if erasure["kind"] == "approximate":
        residual = [[_humanize(k), _value(v)] for k, v in sorted(erasure["residual"].items())]
        out += [p("Measured residual", "h2"),
                grid_table(["Measure", "Value"], residual, [110 * mm, FRAME_WIDTH - 110 * mm])]
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
    out = [_h1("4. Purge and residual scan"),
           p(f"{_count(n, 'stored artifact')} that held the erased parameters "
             f"{'was' if n == 1 else 'were'} overwritten and deleted; only the hashes remain, "
             f"as tombstones. Purge {done}.")]
    out += [p(sha, "hash") for sha in purge["purged"]]
    out += [Spacer(1, 6), markup(_scan_sentence(scan))]
    if scan.get("hits"):
        out.append(grid_table(["File", "Pattern"],
                              [[str(h.get("file")), str(h.get("pattern"))] for h in scan["hits"]],
                              [130 * mm, FRAME_WIDTH - 130 * mm]))
    return out


def audit_section(m: dict[str, Any], charts_data: dict[str, Any] | None) -> list[Flowable]:
    audit = m.get("audit")
    out: list[Flowable] = [_h1("5. Audit against the retrain reference")]
    if not audit:
        return out + [p("No audit was recorded for this erasure. The certificate rests on the "
                        "execution record, the purge and the residual scan above.")]
    out.append(p(_audit_intro(audit)))
    out.append(_figures_table(audit["figures"], audit.get("reference") or {}))
    drawings = chart_drawings(charts_data, font=fonts()[0])
    return out + _chart_flowables(drawings)


def accountability_section(m: dict[str, Any]) -> list[Flowable]:
    head = m["audit_log_head"]
    rows = [("Operator", m["operator"]), ("Approver", m["approver"] or "none recorded"),
            ("Audit-log head", p(f"entry {head['seq']}, hash {head['hash']}", "hash")),
            ("Software", ", ".join(f"{k} {v}" for k, v in sorted(m["software"].items())))]
    return [_h1("6. Accountability"), key_value_table(rows), Spacer(1, 4),
            p("The audit-log head fixes the state of the registry's hash-chained log when this "
              "certificate was issued; any later rewrite of earlier entries breaks the chain.",
              "small")]


def verification_section(digest: str) -> list[Flowable]:
    steps = [
        "The signature: the PDF carries a PAdES signature over the whole file. A PDF reader "
        "shows it in its signature panel; <b>unprompt verify FILE.pdf</b> also requires the "
        "signer certificate to be one of the workspace's pinned trusted certificates.",
        "The manifest: the attached file <b>manifest.json</b> is the canonical record of this "
        f"certificate. Its SHA-256 must equal <font name='{fonts()[1]}' size='7'>{digest}</font>, "
        "printed here, encoded in the QR code and stored in the signed document metadata.",
        "The registry: the certificate id must be on record there with the same manifest hash.",
    ]
    return [_h1("7. How to verify this certificate")] + [
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
    return text + (f", {margin} day(s) before it was due." if margin >= 0
                   else f", {-margin} day(s) after it was due.")


def _kind_explanation(m: dict[str, Any]) -> str:
    if m["erasure"]["kind"] == "exact":
        return ("Every trainable parameter of this model belongs to a single class; the erased "
                "class's own parameters were deleted from the model and their stored bytes "
                "destroyed, so no trained weight derived from it remains in use.")
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
    size = f"{scan['bytes_scanned'] / 1e6:.1f} MB" if "bytes_scanned" in scan else "all bytes"
    files = scan.get("files_scanned", "every")
    if scan["clean"]:
        return (f"{b('Residual scan: clean.')} None of the {files} files ({size}) in the "
                "workspace contains the bytes of a removed parameter tensor.")
    return (f"{b('Residual scan: NOT clean.')} {len(scan.get('hits', []))} match(es) of removed "
            f"parameter bytes were found in {files} files ({size}):")


def _audit_intro(audit: dict[str, Any]) -> str:
    verdict = {True: "passed", False: "FAILED", None: "not assessed"}[audit.get("passed")]
    run = f"audit run {audit['run_id']}" if audit.get("run_id") is not None else "the audit"
    ref = audit.get("reference_id") or "a model retrained without the erased data"
    return (f"Result of {run}: {verdict}. Each figure is compared with the retrain reference "
            f"({ref}), the model that never saw the erased data. Rates are percentages.")


def _figures_table(model: dict[str, Any], ref: dict[str, Any]) -> Table:
    rows = []
    for label, path, good in FIGURES:
        a, r = _get(model, path), _get(ref, path)
        if a is None and r is None:
            continue
        gap = "" if a is None or r is None else f"{(a - r) * 100:+.1f} pp"
        rows.append([label, _pct(a), _pct(r), gap, good])
    widths = [62 * mm, 22 * mm, 26 * mm, 18 * mm, FRAME_WIDTH - 128 * mm]
    return grid_table(["Figure", "This model", "Retrain reference", "Gap", "Expected"],
                      rows, widths)


def _chart_flowables(drawings: list[tuple[str, Any, str]]) -> list[Flowable]:
    out: list[Flowable] = []
    wide = [d for d in drawings if d[1].width > FRAME_WIDTH / 2]
    narrow = [d for d in drawings if d[1].width <= FRAME_WIDTH / 2]
    for title, drawing, caption in wide:
        out.append(KeepTogether([p(title, "h2"), drawing, p(caption, "small")]))
    if narrow:
        cells = [[p(t, "h2"), d, p(c, "small")] for t, d, c in narrow]
        out.append(KeepTogether(Table([cells], colWidths=[FRAME_WIDTH / 2] * len(cells),
                                      hAlign="LEFT", style=[("VALIGN", (0, 0), (-1, -1), "TOP")])))
    return out


def _get(obj: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return float(obj) if isinstance(obj, int | float) and not isinstance(obj, bool) else None


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _value(value: Any) -> str:
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return _pct(value)
    return str(value)


def _humanize(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
