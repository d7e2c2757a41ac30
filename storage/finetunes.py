"""Language models fine-tuned by the product on a people corpus (docs/design.md section 14).

A fine-tuned model is a Model row of kind ``llm`` like any guarded model; its ``config``
holds the folder of its live version's weights as the model spec, its ``dataset_ref`` names
the corpus. Each fine-tune is a ModelVersion (the first is 1; a fine-tune again under the
same name, e.g. without a forgotten person, supersedes the live one). The version's
``metrics`` map every person to the artifact holding their records, so the product knows
whose records went into which version. Nothing here touches tensors.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog
from storage.errors import NotFoundError, RefusedError
from storage.models import ErasureRequest, Model, ModelVersion, utcnow
from storage.registry import live_version

FINETUNED = "finetune"  # Model.training_mode of a model this product fine-tuned


def record_finetune(session: Session, *, name: str, folder: str, corpus: dict[str, Any],
                    subjects: dict[str, dict[str, Any]], details: dict[str, Any],
                    operator: str) -> ModelVersion:
    """A new live version of the fine-tuned model ``name`` (the model is created first)."""
    model = session.scalars(select(Model).where(Model.name == name)).first()
    parent = None
    if model is None:
        model = Model(name=name, kind="llm", backbone=details.get("base", ""),
                      training_mode=FINETUNED, dataset_ref=corpus, config={})
        session.add(model)
        session.flush()
    else:
        if model.kind != "llm" or model.training_mode != FINETUNED:
            raise RefusedError(f"model {name!r} exists and was not fine-tuned by this "
                               "product; choose another --name")
        refuse_erased(session, model, list(subjects))
        parent = live_version(session, model)
        parent.status = "superseded"
    number = 1 + max((v.number for v in model.versions), default=0)
    version = ModelVersion(model_id=model.id, number=number,
                           parent_id=parent.id if parent else None, erasure_kind="",
                           metrics={**details, "folder": folder, "subjects": subjects})
    session.add(version)
    encoder = (model.config or {}).get("encoder")  # the rules' encoder stays theirs
    model.config = {"spec": folder, "encoder": encoder, "loaded_at": utcnow().isoformat()}
    model.dataset_ref = corpus
    session.flush()
    auditlog.append(session, operator, "model.finetuned", {
        "model": name, "version": number, "corpus": corpus, "people": len(subjects),
        "records": sum(s["records"] for s in subjects.values()),
        "weights_sha256": details.get("weights_sha256")})
    return version


def erased_people(session: Session, model: Model, persons: list[str]
                  ) -> dict[str, list[ErasureRequest]]:
    """person -> the requests (any state but rejected) recorded on ``model`` to erase their
    records, for each of ``persons`` who has one. A request stores the person's rule name
    (a hash of the name), never the name, so the corpus's names are matched by it."""
    by_rule = {subject_rule_name(p): p for p in persons}
    found: dict[str, list[ErasureRequest]] = {}
    for request in session.scalars(select(ErasureRequest).where(
            ErasureRequest.model_id == model.id).order_by(ErasureRequest.id)):
        person = by_rule.get(request.scope.get("rule") or "")
        if request.status != "rejected" and "subject_records" in request.scope and person:
            found.setdefault(person, []).append(request)
    return found


def refuse_erased(session: Session, model: Model, persons: list[str]) -> None:
    """A fine-tune of ``model`` again must not learn a person whose erasure is recorded on
    it (a request received, suppressed or exact): it would bring their records back into
    the weights while the request says they are gone (docs/design.md section 14)."""
    found = erased_people(session, model, persons)
    if not found:
        return
    named = "; ".join(f"{person} (request {', '.join(_state(r) for r in rows)})"
                      for person, rows in found.items())
    leave = " ".join(f"--exclude {_quoted(p)}" for p in found)
    raise RefusedError(f"the corpus holds {len(found)} person(s) whose erasure is recorded on "
                       f"{model.name!r}: {named}; fine-tuning them in again would undo it. "
                       f"Leave them out ({leave}) or remove their records from the corpus")


def _state(request: ErasureRequest) -> str:
    state = "exact" if request.exact_at is not None else request.status
    return f"#{request.id} {state}"


def _quoted(person: str) -> str:
    return f"'{person}'" if " " in person else person


def finetuned_model(session: Session, name: str) -> Model:
    """The fine-tuned language model ``name``; a clear error for any other model."""
    model = session.scalars(select(Model).where(Model.name == name)).first()
    if model is None:
        raise NotFoundError(f"no model named {name!r} (see `models`)")
    if model.kind != "llm" or model.training_mode != FINETUNED:
        raise RefusedError(f"model {name!r} was not fine-tuned on a people corpus by this "
                           "product, so it has no data subjects")
    return model


def subjects_of(session: Session, model: Model) -> dict[str, dict[str, Any]]:
    """person -> {"records": count, "artifact": sha256} of the live version."""
    return dict(live_version(session, model).metrics.get("subjects") or {})


def subject_rule_name(person: str) -> str:
    """The forget rule of one person: a name that does not spell theirs out."""
    return "subject-" + hashlib.sha256(person.encode()).hexdigest()[:10]


def find_subject(subjects: dict[str, Any], subject: str, model_name: str) -> str:
    """The corpus's spelling of ``subject`` (case and spacing aside); refused with the
    nearest names otherwise."""
    wanted = " ".join(subject.split()).casefold()
    for person in subjects:
        if " ".join(person.split()).casefold() == wanted:
            return person
    near = difflib.get_close_matches(subject, list(subjects), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else \
        " (check the spelling)"
    raise NotFoundError(f"no records of {subject!r} went into {model_name!r}{hint}")


def subject_scope(session: Session, model: Model, subject: str) -> dict[str, Any]:
    """The scope of a request to forget one person of a fine-tuned model: the forget rule
    that will be built for them and the artifact of their records (not their name)."""
    subjects = subjects_of(session, model)
    person = find_subject(subjects, subject, model.name)
    entry = subjects[person]
    scope = {"model": model.name, "kind": "rule", "rule": subject_rule_name(person),
             "subject_records": entry["artifact"], "records": entry["records"]}
    _refuse_duplicate(session, model, scope)
    return scope


def _refuse_duplicate(session: Session, model: Model, scope: dict[str, Any]) -> None:
    for request in session.scalars(select(ErasureRequest).where(
            ErasureRequest.model_id == model.id).order_by(ErasureRequest.id)):
        if request.status != "rejected" and \
                request.scope.get("subject_records") == scope["subject_records"]:
            raise RefusedError(f"request {request.id} ({request.status}) already covers this "
                               f"person's records in {model.name!r}; this one is a duplicate")


def retain_reference(session: Session, model: Model, forgotten: list[str]) -> dict[str, Any]:
    """The retain model of ``forgotten`` people of ``model``: the newest fine-tuned version of
    the same corpus format and base that holds none of them and no one ``model`` lacks
    (``lm finetune --exclude``). ``{"missing": reason}`` when the registry has none."""
    live = live_version(session, model)
    mine, base = set(subjects_of(session, model)), live.metrics.get("base")
    found = []
    for other in session.scalars(select(Model).where(Model.training_mode == FINETUNED)):
        for version in other.versions:
            theirs = set((version.metrics or {}).get("subjects") or {})
            if version.id != live.id and theirs and theirs <= mine \
                    and not theirs & set(forgotten) and version.metrics.get("base") == base \
                    and (other.dataset_ref or {}).get("format") == \
                    (model.dataset_ref or {}).get("format"):
                found.append((version.created_at, other.name, version))
    if not found:
        return {"missing": "no fine-tune of this corpus without the forgotten people is in "
                           "the registry"}
    _, name, version = max(found, key=lambda f: (f[0], f[2].id))
    return {"model": name, "version": version.number, "folder": version.metrics["folder"],
            "people": len(version.metrics["subjects"]),
            "left_out": len(mine - set(version.metrics["subjects"]))}
