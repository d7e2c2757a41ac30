"""Erasure kinds (docs/design.md section 4.3): one mapping from the training mode, the
backbone's source and the recorded kind to the kind every result and certificate shows."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.pfm import MODES
from storage.erasure_kinds import (
    DESCRIPTIONS,
    KINDS,
    RETRAINED,
    describe,
    erasure_kind,
    forget_kind,
    needs_residual,
    version_kind,
)

EXPECTED = {"independent": "exact", "isolated": "isolated", "frozen": "isolated",
            "lora": "approximate", "full": "approximate", "guard": "suppressed"}


@pytest.mark.parametrize("mode,kind", sorted(EXPECTED.items()))
def test_every_mode_has_its_kind(mode: str, kind: str) -> None:
    assert erasure_kind(mode, True) == kind
    assert erasure_kind(mode, True, kind) == kind  # what new code records reads back


def test_every_training_mode_is_mapped() -> None:
    assert set(MODES) <= set(EXPECTED)  # a new mode must say which kind it gives


@pytest.mark.parametrize("mode", ["independent", "isolated", "frozen"])
def test_a_backbone_that_learned_erasable_data_makes_it_approximate(mode: str) -> None:
    assert erasure_kind(mode, False) == "approximate"


def test_a_recorded_kind_never_claims_more_than_the_mode() -> None:
    # rows written before the kinds: "exact" meant exact by construction (isolated / frozen)
    assert erasure_kind("isolated", None, "exact") == "isolated"
    assert erasure_kind("frozen", True, "exact") == "isolated"
    assert erasure_kind("full", True, "exact") == "approximate"
    assert erasure_kind("independent", True, "approximate") == "approximate"  # a scrub, say
    assert erasure_kind(None, None, "exact") == "approximate"  # nothing known: the least claim
    assert erasure_kind("unknown-mode", True) == "approximate"


def test_a_retrain_is_the_one_way_to_exact_beyond_the_mode() -> None:
    assert erasure_kind("full", True, RETRAINED) == "exact"
    assert erasure_kind("isolated", True, RETRAINED) == "exact"


def test_guard_rules_are_suppressed_whatever_was_recorded() -> None:
    assert erasure_kind("guard", True, "approximate") == "suppressed"  # before the kinds
    assert erasure_kind("full", True, "suppressed") == "suppressed"


def _model(mode: str, non_erasable: bool | None, *kinds: str) -> SimpleNamespace:
    source = {} if non_erasable is None else {"backbone_source": {"non_erasable": non_erasable}}
    versions = [SimpleNamespace(erasure_kind=k, metrics=source if i == 0 else {})
                for i, k in enumerate(kinds)]
    return SimpleNamespace(training_mode=mode, versions=versions)


def test_versions_read_with_their_model() -> None:
    legacy = _model("isolated", True, "exact")
    assert version_kind(legacy, legacy.versions[0]) == "isolated"
    assert forget_kind(legacy, legacy.versions[0]) == "isolated"
    tainted = _model("independent", False, "exact")
    assert version_kind(tainted, tainted.versions[0]) == "approximate"


def test_a_forget_after_a_retrain_is_not_exact_on_a_shared_weight_model() -> None:
    """The retrain made the classes forgotten before it exact; the next class's forget
    deletes its prompt only, and the retrained backbone learned from that class."""
    model = _model("full", True, "approximate", RETRAINED)
    retrained = model.versions[1]
    assert version_kind(model, retrained) == "exact"
    assert forget_kind(model, retrained) == "approximate"
    independent = _model("independent", True, "exact", RETRAINED)
    assert forget_kind(independent, independent.versions[1]) == "exact"


def test_each_kind_has_one_plain_line() -> None:
    assert list(DESCRIPTIONS) == list(KINDS)
    for kind in KINDS:
        text = describe(kind)
        assert text.endswith(".") and "\n" not in text and len(text) < 130
    assert [k for k in KINDS if needs_residual(k)] == ["isolated", "approximate"]


def test_readme_and_design_doc_use_the_same_lines() -> None:
    root = Path(__file__).resolve().parents[2]
    for doc in ("README.md", "docs/design.md"):
        text = " ".join((root / doc).read_text(encoding="utf-8").split())
        for kind in KINDS:
            assert describe(kind) in text, (doc, kind)
