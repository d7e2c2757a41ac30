"""The certificate pages of a forget-rule erasure (a guarded language model).

The one thing these pages must not blur: the language model's weights are unchanged. The
knowledge is suppressed at inference, for the prompts the rule's classifier flags; a prompt
it misses is answered as before, and the suppression lasts only while the rule is enabled.
Everything here reads a validated manifest (``unprompt.cert/3``) with a ``guard`` section.
Every audit figure is printed with the number of held-out prompts it rests on.
"""

from __future__ import annotations

from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer, Table

from reports.guard_charts import knowledge_chart, trace_chart
from reports.guard_text import (
    calibration_sentence,
    count_cell,
    examples_sentence,
    n_before,
    person_corruption,
)
from reports.guard_text import on_prompts as _on
from reports.guard_text import pct as _pct
from reports.pdf_audit import verdict_cell
from reports.pdf_people import people_section
from reports.pdf_style import FRAME_WIDTH, b, fonts, grid_table, key_value_table, markup, p
from storage.erasure_kinds import SUPPRESSED, describe
from storage.rules import PERSON_FAMILIES, SCOPE_KEY, public_params

HOW = ("The knowledge is suppressed at inference: the rule's classifier scores every prompt, "
       "and for a prompt scored strictly above its threshold the guard corrupts the input "
       "embeddings, so that the model cannot use what it knows about the topic. The erasure "
       "therefore lasts only while the rule is enabled; disabling it is refused while it "
       "enforces this request.")


def is_guard(m: dict[str, Any]) -> bool:
    return m["scope"].get("kind") == "rule" and isinstance(m.get("guard"), dict)


def verdict_sentence(m: dict[str, Any]) -> str:
    rule = m["guard"]["rule"]
    return (f"The topic of forget rule '{rule['name']}' is suppressed in the answers of "
            f"language model '{m['model']['name']}' since {m['timeline']['executed_at'][:10]}, "
            "by a guard at inference.")


def kind_sentence(m: dict[str, Any]) -> str:
    return (f"Erasure kind: suppressed. {describe(SUPPRESSED)} It holds while the rule is "
            "enabled; a prompt the classifier misses is answered as before.")


def condition_sentence(m: dict[str, Any]) -> str:
    rule = m["guard"]["rule"]
    return (f"Condition: the guard must stay enabled. The erasure holds only while forget "
            f"rule '{rule['name']}' version {rule['version']} is enabled; disabling it is "
            "refused while it enforces this request.")


def title_facts(m: dict[str, Any]) -> list[tuple[str, str]]:
    t, rule, lm = m["timeline"], m["guard"]["rule"], m["guard"]["language_model"]
    cal = rule.get("calibration") or {}
    classifier = (m.get("audit") or {}).get("figures", {}).get("classifier") or {}
    if classifier.get("tpr_forget") is not None:
        counts = classifier.get("counts") or {}
        held_out = (f"held-out TPR {_pct(classifier['tpr_forget'])}{_on(counts.get('forget'))}"
                    f", FPR {_pct(classifier.get('fpr_general'))} on "
                    f"{n_before(counts.get('general'))}general prompts")
    else:
        held_out = (f"calibrated for FPR at most {_pct(cal.get('target_fpr'))}; held-out "
                    "TPR not measured")
    return [("Certificate", m["certificate_id"]),
            ("Request", f"#{m['request']['id']}, received {t['received_at'][:10]}"),
            ("Legal basis", m["request"]["legal_basis"]),
            ("Language model", f"{lm['name']}: weights unchanged"),
            ("Forget rule", f"{rule['name']}, version {rule['version']}, {rule['status']}"),
            ("Classifier", held_out),
            ("Executed", f"{t['executed_at'][:10]} by {m['operator']}"),
            ("Approved by", m["approver"] or "none recorded"),
            ("Certified", t["certified_at"][:10])]


def statement(m: dict[str, Any]) -> str:
    req, t, rule = m["request"], m["timeline"], m["guard"]["rule"]
    return (f"This certificate attests that erasure request #{req['id']}, received on "
            f"{t['received_at'][:10]} under the legal basis “{_x(req['legal_basis'])}”, was "
            f"executed on {t['executed_at'][:10]} by enabling forget rule “{_x(rule['name'])}” "
            f"on language model “{_x(m['model']['name'])}”. <b>No weight of the model was "
            "changed or deleted.</b> Prompts that the rule's classifier flags are answered with "
            "corrupted input embeddings, so the model cannot use what it knows about the topic; "
            "prompts it does not flag are answered exactly as before, including any "
            "rephrasing of the topic that the classifier misses. The following pages give the "
            "timeline, the rule and its classifier, the guard's audit figures against the "
            "ignorant reference, and how to verify this document.")


def erasure_section(m: dict[str, Any]) -> list[Flowable]:
    method, erasure = m["method"], m["erasure"]
    rows = [("Scope", f"forget rule '{m['scope']['rule']}' of model '{m['model']['name']}'"),
            ("Method", method["name"])]
    rows += [(label, method[key]) for key, label in
             (("description", "What was done"), ("reference", "Published method"))
             if method.get(key)]
    return [_h1("2. What is suppressed, and how"), key_value_table(rows), Spacer(1, 6),
            markup(f"{b(kind_sentence(m))} {HOW}"),
            p("What the guard leaves", "h2"), _residual_table(erasure["residual"]),
            Spacer(1, 3),
            p("The ignorant reference is the knowledge score of the same model on questions it "
              "cannot know: the level of a model never taught the topic. The miss rate is the "
              "share of held-out prompts about the topic that the classifier did not flag; "
              "those are answered as if no rule existed.", "small")]


def corruption_text(rule: dict[str, Any]) -> str:
    """The rule's corruption in words: the recall ablation's layers and where its terms
    are kept, or an embedding corruption's family, strength and parameters."""
    params = dict(rule.get("corruption_params") or {})
    if rule["corruption"] in PERSON_FAMILIES:
        text = person_corruption(rule["corruption"], params.get("first"), params.get("last"),
                                 params.get("value_bias"))
        return (f"{text}; the names (and the facts the bias lowers) are kept in the artifact "
                f"{params.get('terms_artifact', '-')}, not in the registry")
    return f"{rule['corruption']}, strength sigma {rule['sigma']:.4g}" + _params(params)


def rule_section(m: dict[str, Any]) -> list[Flowable]:
    guard = m["guard"]
    rule, lm, search = guard["rule"], guard["language_model"], guard.get("strength_search") or {}
    cal = rule.get("calibration") or {}
    model_rows = [("Language model", lm["name"]),
                  ("Loaded from", lm.get("spec") or "the offline default model"),
                  ("Parameters", f"{lm['parameters']:,}" if lm.get("parameters") else "unknown"),
                  ("Weights", "unchanged by this erasure (nothing to purge or rescan)"),
                  ("Classifier encoder", lm.get("encoder") or "the default sentence encoder")]
    executed = rule.get("executed_version", rule["version"])
    version = f"{rule['version']} ({rule['status']})" + (
        f"; the request was executed by version {executed}" if executed != rule["version"]
        else "")
    examples = rule.get("examples") or {}
    rule_rows = [
        ("Rule", rule["name"] + (f": {rule['description']}" if rule.get("description") else "")),
        ("Version", version),
        ("Classifier artifact", p(rule["classifier_artifact"], "hash")),
        ("Threshold", f"{rule['threshold']:.4g}; flags a prompt scored strictly above it. "
                      + calibration_sentence(cal)),
        ("Corruption", corruption_text(rule)),
        ("Examples", examples_sentence(examples)),
        ("Strength search", _search_sentence(search)
         if rule["corruption"] not in PERSON_FAMILIES
         else "none: a person's corruption has no noise strength (its layers are fixed; a "
              "pseudonym's value bias is calibrated on the corpus when the rule is built)")]
    out = [_h1("3. Language model and forget rule"), key_value_table(model_rows), Spacer(1, 6),
           key_value_table(rule_rows)]
    chart = trace_chart(search.get("trace") or [], fonts()[0])
    if chart is not None:
        out.append(KeepTogether([p("Strength search (zeroth-order)", "h2"), chart,
                                 p("Knowledge score of the guarded model on known training "
                                   "forget prompts at each strength tried; the chosen sigma "
                                   "brings it to the ignorant reference with the least "
                                   "corruption. The audit below uses held-out prompts only.",
                                   "small")]))
    return out


def audit_section(m: dict[str, Any]) -> list[Flowable]:
    audit = m.get("audit")
    out: list[Flowable] = [_h1("4. Audit of the guard")]
    if not audit:
        return out + [p("No audit of this rule version was recorded.")]
    figures = audit["figures"]
    verdict = {True: "passed", False: "FAILED", None: "not assessed"}[audit.get("passed")]
    out += [p(f"Result of audit run {audit['run_id']} ({audit['created_at'][:10]}): {verdict}. "
              "Every figure rests on held-out prompts only, which the classifier never trained "
              "on and the strength search never used; the Prompts column says how many. The "
              "forget prompts are answered with and without the guard; knowledge counts only "
              "the prompts the unguarded model answers correctly." + _unknown(figures)),
            _figures_table(figures)]
    if audit.get("checks"):
        out += [p("Pass / fail against the workspace thresholds", "h2"),
                _checks_table(audit["checks"]), Spacer(1, 3),
                p("The audit fails when any check fails and passes only when every check was "
                  "measured and passed; the thresholds are the workspace's guard settings when "
                  "the certificate was issued.", "small")]
    chart = knowledge_chart(figures.get("knowledge") or {}, fonts()[0])
    if chart is not None:
        out.append(KeepTogether([p("Knowledge of the topic", "h2"), chart,
                                 p("Share of known held-out forget prompts answered correctly "
                                   "without the guard, with it, and by the ignorant reference.",
                                   "small")]))
    return out + people_section(figures)


def _unknown(figures: dict[str, Any]) -> str:
    knowledge = figures.get("knowledge") or {}
    if knowledge.get("known"):
        return ""
    if not knowledge.get("evaluated"):
        return (" The rule holds out no forget prompt with a known answer (every one trained "
                "the classifier), so the guard's effect on the model's knowledge was not "
                "measured.")
    return (f" The unguarded model answers none of the {knowledge.get('evaluated', 0)} held-out "
            "forget prompts correctly, so the guard's effect on its knowledge could not be "
            "measured.")


def registry_step(m: dict[str, Any]) -> str:
    rule = m["guard"]["rule"]
    return (f"The registry: the certificate id must be on record there with the same manifest "
            f"hash, and forget rule <b>{_x(rule['name'])}</b> must still be enabled at version "
            f"{rule['version']} with the classifier above; a retrained, disabled or removed rule "
            "makes <b>unprompt verify</b> fail with a named reason.")


def _residual_table(residual: dict[str, Any]) -> Table:
    rows = [["Knowledge after the guard (known held-out forget prompts)",
             _pct(residual.get("knowledge_after")), count_cell(residual.get("known_prompts")),
             _pct(residual.get("reference_knowledge_after"))
             + _on(residual.get("reference_prompts"))],
            ["Held-out forget prompts the classifier misses",
             _pct(residual.get("classifier_miss_rate")),
             count_cell(residual.get("classifier_prompts")), "0.0% ideally"],
            ["Held-out forget prompts the unguarded model answers correctly", _known(residual),
             count_cell(residual.get("evaluated_prompts")), ""]]
    return grid_table(["Measure", "This model", "Prompts", "Ignorant reference"], rows,
                      [84 * mm, 24 * mm, 18 * mm, FRAME_WIDTH - 126 * mm])


FIGURES = [  # label, path, path of the number of prompts it rests on, expected
    ("Knowledge before the guard", ("knowledge", "before"), ("knowledge", "evaluated"),
     "what the model knew"),
    ("Knowledge after the guard (known prompts)", ("knowledge", "after"),
     ("knowledge", "known"), "at the ignorant reference"),
    ("Ignorant reference", ("knowledge", "ignorant"), ("knowledge", "ignorant_prompts"), ""),
    ("Unflagged answers identical to unguarded", ("side_effects", "identical_unflagged"),
     ("side_effects", "unflagged"), "100%"),
    ("All retain answers identical to unguarded", ("side_effects", "identical"),
     ("side_effects", "evaluated"), "near 100%"),
    ("Classifier TPR, held-out forget prompts", ("classifier", "tpr_forget"),
     ("classifier", "counts", "forget"), "near 100%"),
    ("Classifier FPR, held-out neighbouring prompts", ("classifier", "fpr_neighbour"),
     ("classifier", "counts", "neighbour"), "low"),
    ("Classifier FPR, held-out general prompts", ("classifier", "fpr_general"),
     ("classifier", "counts", "general"), "about 1%"),
]


def _figures_table(figures: dict[str, Any]) -> Table:
    rows = [[label, _pct(_get(figures, path)), count_cell(_get(figures, n)), good]
            for label, path, n, good in FIGURES if _get(figures, path) is not None]
    latency = (figures.get("classifier") or {}).get("latency_ms") or {}
    if latency.get("p95") is not None:
        rows.append(["Classifier latency per prompt (median / 95th percentile)",
                     f"{latency.get('p50', 0):.1f} / {latency['p95']:.1f} ms",
                     count_cell(latency.get("n")), "small"])
    share = (figures.get("latency") or {}).get("overhead_share")
    if share is not None:
        rows.append(["Classifier time as a share of answer time", _pct(share), "", "small"])
    return grid_table(["Figure", "Measured", "Prompts", "Expected"], rows,
                      [90 * mm, 28 * mm, 18 * mm, FRAME_WIDTH - 136 * mm])


def _checks_table(checks: list[dict[str, Any]]) -> Table:
    rows = []
    for c in checks:
        kind, limit, value = c.get("kind"), c["limit"], c.get("measured")
        if kind == "ms":
            shown, bound = ("" if value is None else f"{value:.1f} ms"), f"at most {limit:g} ms"
        else:
            shown = "" if value is None else f"{value * 100:+.1f} pp" if c["name"].endswith(
                "gap_max") else _pct(value)
            word = "at least" if kind == "min" else "at most"
            bound = (f"{word} {limit * 100:+.1f} pp" if c["name"].endswith("gap_max")
                     else f"{word} {_pct(limit)}")
        rows.append([c.get("label", c["name"]), shown, bound, verdict_cell(c.get("passed"))])
    return grid_table(["Check", "Measured", "Threshold", "Result"], rows,
                      [80 * mm, 24 * mm, 30 * mm, FRAME_WIDTH - 134 * mm])


def _known(residual: dict[str, Any]) -> str:
    known, evaluated = residual.get("known_prompts"), residual.get("evaluated_prompts")
    if known is None:
        return "n/a"
    return f"{known} of {evaluated}" if evaluated is not None else str(known)


def _search_sentence(search: dict[str, Any]) -> str:
    if search.get("note"):
        return f"{search['note']} (sigma {search.get('chosen_sigma', 0):.4g})"
    return (f"{search.get('evaluations', 0)} evaluations on {search.get('used', '?')} of "
            f"{search.get('known', '?')} training forget prompts the model knows (of "
            f"{search.get('evaluated', '?')}); chosen sigma {search.get('chosen_sigma', 0):.4g}, "
            f"ignorant reference {_pct(search.get('ignorant_level'))}")


def _params(params: dict[str, Any] | None) -> str:
    """The corruption's parameters; a subject's names are counted, not printed."""
    public = public_params(params)
    shown = {k: v for k, v in public.items() if v is not None and k != SCOPE_KEY}
    if public.get(SCOPE_KEY):
        shown["on the tokens of the subject's"] = f"{public[SCOPE_KEY]} names"
    return f" ({', '.join(f'{k} {v}' for k, v in sorted(shown.items()))})" if shown else ""


def _get(obj: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return float(obj) if isinstance(obj, int | float) and not isinstance(obj, bool) else None


def _h1(text: str) -> Flowable:
    return p(text, "h1")


def _x(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
