"""Erasure kinds: the one vocabulary every result, audit, certificate and screen uses
(docs/design.md section 4.3).

``exact`` is the field's meaning, retrain-equivalent: a ``independent`` model on a
non-erasable backbone, or a version retrained without the class (recorded as
``RETRAINED``). ``isolated``: ``isolated`` / ``frozen`` modes, no shared weight learned
from the class but the other classes' own parameters did. ``approximate``: ``lora`` /
``full`` (scrubbed or not). ``suppressed``: a guard forget rule on a language model.

Workspaces written before this vocabulary recorded ``exact`` for isolated / frozen models
(certificates ``unprompt.cert/1`` and ``/2`` say so): a recorded kind never claims more
than the training mode can show, so those rows read ``isolated`` now. The one way to claim
``exact`` beyond the mode is the ``RETRAINED`` record of a retrain without the class.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import object_session

from storage.models import Model

EXACT, ISOLATED, APPROXIMATE, SUPPRESSED = "exact", "isolated", "approximate", "suppressed"
KINDS = (EXACT, ISOLATED, APPROXIMATE, SUPPRESSED)  # strongest claim first
LEGACY_KINDS = (EXACT, APPROXIMATE)  # the vocabulary of certificates cert/1 and cert/2
RETRAINED = "retrained"  # recorded on a version / request made exact by a retrain
# kinds that carry a measured residual: certifying one without an audit is refused
MEASURED = (ISOLATED, APPROXIMATE)

DESCRIPTIONS = {
    EXACT: "Retrain-equivalent: the model is what training without the erased data gives.",
    ISOLATED: "No shared weight learned from the erased data; the other classes' own "
              "parameters did, so a class-level residual is measured.",
    APPROXIMATE: "Shared weights also learned from the erased data; part of it can remain "
                 "there, so the residual is measured against a retrain.",
    SUPPRESSED: "The model's weights are unchanged; the knowledge is blocked at inference "
                "for the prompts the rule's classifier flags.",
}
LEGACY_DESCRIPTIONS = {  # how cert/1 and cert/2 worded them (old certificates keep it)
    EXACT: "Exact by construction: no shared weight learned from the erased data; its own "
           "parameters were deleted.",
    APPROXIMATE: "Approximate: shared weights also learned from the erased data.",
}
MODE_KINDS = {"independent": EXACT, "isolated": ISOLATED, "frozen": ISOLATED,
              "lora": APPROXIMATE, "full": APPROXIMATE, "guard": SUPPRESSED}
_NEEDS_NON_ERASABLE = ("independent", "isolated", "frozen")


def erasure_kind(mode: str | None, non_erasable: bool | None = True,
                 recorded: str | None = None) -> str:
    """The kind of an erasure on a model trained in ``mode``.

    ``non_erasable``: the backbone never trained on erasable data (None: unknown, as for
    rows that predate the record; the recorded kind was decided with it at training).
    ``recorded``: the kind stored on the version or request; it can only lower the claim
    the mode supports, except ``RETRAINED`` (exact) and ``suppressed``."""
    if recorded == RETRAINED:
        return EXACT
    if recorded == SUPPRESSED or mode == "guard":
        return SUPPRESSED
    by_mode = MODE_KINDS.get(mode or "", APPROXIMATE)
    if by_mode == SUPPRESSED:  # an unknown mode recorded as a rule never claims more
        by_mode = APPROXIMATE
    if mode in _NEEDS_NON_ERASABLE and non_erasable is False:
        by_mode = APPROXIMATE
    if recorded in KINDS:
        return weakest(by_mode, recorded)
    return by_mode


def weakest(*kinds: str) -> str:
    """The kind that claims least (``suppressed`` claims least of all)."""
    return max(kinds, key=KINDS.index)


def describe(kind: str) -> str:
    """The kind's one-line plain-English description (PDF, GUI tooltip, README)."""
    return DESCRIPTIONS.get(kind, LEGACY_DESCRIPTIONS.get(kind, kind))


def needs_residual(kind: str) -> bool:
    """True where a certificate must quote a measured residual (an audit)."""
    return kind in MEASURED


def backbone_non_erasable(model: Any) -> bool | None:
    """What version 1 recorded about the backbone's source (None when not recorded)."""
    versions = getattr(model, "versions", None) or []
    source = (versions[0].metrics or {}).get("backbone_source") if versions else None
    return source.get("non_erasable") if isinstance(source, dict) else None


def version_kind(model: Any, version: Any) -> str:
    """The kind of the erasures a version embodies (its recorded kind, read today)."""
    return erasure_kind(model.training_mode, backbone_non_erasable(model), version.erasure_kind)


def forget_kind(model: Any, version: Any) -> str:
    """The kind a forget on ``version`` gives: a retrain made the classes forgotten before
    it exact, not the next one, whose shared weights learned from it (``full`` mode)."""
    recorded = None if version.erasure_kind == RETRAINED else version.erasure_kind
    return erasure_kind(model.training_mode, backbone_non_erasable(model), recorded)


def request_kind(request: Any, model: Any | None = None) -> str | None:
    """The kind of an executed request (None while not executed): its recorded kind read
    against its model (found through the request's session when not given)."""
    if not request.erasure_kind:
        return None
    if request.scope and request.scope.get("kind") == "rule":
        return erasure_kind("guard", True, request.erasure_kind)
    if model is None and request.model_id is not None:
        session = object_session(request)
        model = session.get(Model, request.model_id) if session is not None else None
    if model is None:
        return erasure_kind(None, None, request.erasure_kind)
    return erasure_kind(model.training_mode, backbone_non_erasable(model), request.erasure_kind)
