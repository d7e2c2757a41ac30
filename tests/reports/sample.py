"""A realistic certificate's facts and chart data, shared by the report tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def sample_facts(kind: str = "exact") -> dict[str, Any]:
    """What the registry would pass to ``build_manifest`` for one executed request of
    ``kind`` (exact: independent mode; isolated; approximate: lora)."""
    received = dt.datetime(2026, 11, 2, 9, 14, 5)
    before = {"shared": "a" * 64, **{f"class:{n}": f"{i:x}" * 64 for i, n in enumerate(CLASSES)}}
    after = {k: v for k, v in before.items() if k != "class:Sandal"}
    facts: dict[str, Any] = {
        "certificate_id": "UC-20261123-9F2C4A1B07",
        "request": {"id": 42, "subject_ref_sha256": "3c" * 32,
                    "legal_basis": "GDPR Art. 17(1)(b): consent withdrawn",
                    "requested_by": "dpo@example.org"},
        "timeline": {"received_at": received, "due_at": received + dt.timedelta(days=30),
                     "approved_at": "2026-11-20T16:02:11+00:00",
                     "executed_at": "2026-11-23T10:41:37Z",
                     "certified_at": dt.datetime(2026, 11, 23, 10, 45, tzinfo=dt.UTC)},
        "scope": {"kind": "classes", "model": "fashion",
                  "classes": [{"index": 5, "name": "Sandal"}]},
        "method": {"name": "pre-forgettable prompts",
                   "description": "the class's prompt token and head row were deleted",
                   "training_mode": "independent",
                   "reference": "Hendrix et al., ACM MM 2025, arXiv 2509.15230"},
        "erasure": {"kind": "exact", "residual": None},
        "model": {"name": "fashion", "kind": "image", "version_before": 3, "version_after": 4,
                  "backbone": "vit_tiny_patch16_224"},
        "artifacts": {"before": before, "after": after},
        "purge": {"purged": ["5" * 64], "complete": True},
        "residual_scan": {"clean": True, "files_scanned": 31, "bytes_scanned": 48_213_504,
                          "patterns": 2, "hits": []},
        "audit": {"run_id": 7, "figures": _figures(0.0, 0.52), "reference": _figures(0.0, 0.5),
                  "reference_id": "retrain fashion v1 without {Sandal}", "passed": True},
        "operator": "alice", "approver": "bob",
        "audit_log_head": {"seq": 118, "hash": "9e" * 32},
        "software": {"unprompt": "0.1.0", "torch": "2.5.1", "timm": "1.0.11"},
    }
    if kind in ("isolated", "approximate"):
        facts["erasure"] = {"kind": kind,
                            "residual": {"relearn_accuracy_5_shots": 0.71,
                                         "reference_relearn_accuracy_5_shots": 0.64},
                            "note": ("shared LoRA weights learned from every class"
                                     if kind == "approximate" else "the other classes' own "
                                     "prompts trained with the erased class's images")}
        facts["method"]["training_mode"] = "lora" if kind == "approximate" else "isolated"
        facts["audit"]["figures"]["erasure"] = kind
    return facts


def _figures(forget: float, auc: float) -> dict[str, Any]:
    attack = {"auc": auc, "tpr_at_1pct_fpr": 0.012, "tpr_at_0_1pct_fpr": 0.001}
    return {"scorecard": {"forget_accuracy": forget, "retain_accuracy": 0.934,
                          "test_accuracy": 0.911},
            "mia_efficacy": 0.998, "forget_distinguishability_auc": auc,
            "threshold_attacks": {"loss": attack, "confidence": attack, "entropy": attack},
            "relearn": {"1": 0.31, "5": 0.64, "20": 0.82}, "erasure": "exact"}


def sample_charts() -> dict[str, Any]:
    """Chart data in the shape engine/audit/compose.py stores."""
    before = {n: 0.8 + 0.015 * i for i, n in enumerate(CLASSES)}
    after = {**before, "Sandal": 0.0}
    grid = [i / 20 for i in range(21)]
    roc = {"linear": {"fpr": grid, "tpr": [min(1.0, x * 1.08) for x in grid]}}
    ref = {"linear": {"fpr": grid, "tpr": grid}}
    return {
        "forgotten": ["Sandal"],
        "per_class_accuracy": {"before": before, "after": after,
                               "reference": {**after, "Shirt": 0.75}},
        "forget_roc": {"model": {"loss": roc}, "reference": {"loss": ref}},
        "relearn": {"shots": [1, 5, 20], "model": {"mean": {"1": 0.31, "5": 0.64, "20": 0.82}},
                    "reference": {"mean": {"1": 0.29, "5": 0.6, "20": 0.8}}},
    }


def org_identity(days: int, key_usage: bool = True) -> Any:
    """A ``SigningIdentity`` for an organisation certificate ending ``days`` from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from reports.keys import SigningIdentity, _key_usage

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Org DPO")])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=400))
               .not_valid_after(now + dt.timedelta(days=days)))
    if key_usage:
        builder = builder.add_extension(_key_usage(), critical=True)
    return SigningIdentity(key, builder.sign(key, hashes.SHA256()))
