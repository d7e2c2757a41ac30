"""Registry jobs for people corpora (docs/design.md section 14): fine-tune a language model
on a corpus (`lm finetune`), and build the forget rule of one person (`request new
--subject`, on approval).

Like ``engine.guard.registry_jobs``, each job takes the workspace folder and plain options,
yields Progress, honours its CancelToken and returns plain data; bad input is refused before
any model loads and nothing is written before the last cancel check.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Generator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from engine.guard import people as people_corpus
from engine.guard.finetune import FinetuneSettings, finetune_job
from engine.guard.jobutil import scaled, stored_artifact
from engine.guard.people import FORMAT, FactRecord, people, read_corpus, write_corpus
from engine.jobs import CancelToken, Progress
from storage import finetunes
from storage.errors import UnpromptError
from storage.rules import PSEUDONYMS_KEY, SCOPE_KEY, TERMS_ARTIFACT, VALUES_KEY
from storage.workspace import Workspace

SUBJECT_JOBS = {  # worker targets (engine/worker.py runs any 'module:function')
    "lm.people": "engine.guard.subject_jobs:people_corpus_job",
    "lm.finetune": "engine.guard.subject_jobs:finetune_model_job",
    "lm.forget": "engine.guard.subject_jobs:forget_subject_job",
}
Job = Generator[Progress, None, dict[str, Any]]
MODELS_DIR = "language-models"


def people_corpus_job(workspace: str | Path, *, file: str, people: int, facts: int,
                      seed: int = 0, operator: str | None = None) -> dict[str, Any]:
    """`lm people`: write a generated corpus of fictitious people to ``file`` (relative to
    the workspace folder, or absolute). The generator is deterministic, so a file that
    already holds exactly this corpus is kept (a retried demo); any other file is refused."""
    records = people_corpus.generate(people, facts, seed)
    path = Path(workspace) / file
    text = "".join(record_line(r) for r in records)
    if path.exists() and (not path.is_file() or path.read_bytes() != text.encode()):
        raise UnpromptError(f"{path} exists; choose another file")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial_file = path.with_name(f".{path.name}.partial")
        partial_file.write_text(text, encoding="utf-8")
        partial_file.rename(path)
    return {"corpus": str(path), "people": people_corpus.people(records),
            "records": len(records)}


def finetune_model_job(workspace: str | Path, *, corpus: str, name: str, operator: str,
                       exclude: list[str] | None = None, base: str | None = None,
                       epochs: int = 6, lr: float = 1e-4, batch_size: int = 16,
                       mode: str = "full", seed: int = 0, device: str = "auto",
                       cache: dict[str, Any] | None = None, cancel: CancelToken | None = None
                       ) -> Job:
    """`lm finetune`: train the base model on the corpus (less ``exclude``d people) and
    record the result as a new version of the language model ``name``."""
    settings = FinetuneSettings(epochs, lr, batch_size, mode, seed=seed)
    settings.check()
    records = corpus_without(read_corpus(corpus), exclude or [])
    if not name.strip():
        raise UnpromptError("the fine-tuned model needs a name (--name)")
    ws = Workspace.open(workspace)
    try:
        with ws.sessions() as session:
            _check_name(session, name, people(records))
        lm = yield from fresh_base(base, device)
        stats = yield from scaled(finetune_job(lm, records, settings, cancel), 0.1, 0.9)
        if cancel is not None:
            cancel.check()  # the last point where cancel takes effect: nothing stored yet
        yield Progress(0.92, "saving the fine-tuned weights")
        stats["embedding_std"] = round(lm.embedding_std, 6)
        folder, sha = _save(ws, name, lm)
        version = _record(ws, name, folder, sha, corpus, records, stats, settings, base,
                          operator)
        yield Progress(1.0, f"{name} v{version} fine-tuned")
        return {"model": name, "version": version, "folder": str(folder),
                "people": len(people(records)), **stats}
    finally:
        ws.close()


def corpus_without(records: list[FactRecord], exclude: list[str]) -> list[FactRecord]:
    """The records of everyone but ``exclude`` (each of whom must be in the corpus)."""
    known = set(people(records))
    for person in exclude:
        if person not in known:
            raise UnpromptError(f"{person!r} is not a person of the corpus, so cannot be "
                                "left out")
    return [r for r in records if r.person not in set(exclude)]


def _check_name(session: Any, name: str, persons: list[str]) -> None:
    """Refused before any model loads: a model ``name`` of another kind, or a person of the
    corpus whose erasure is recorded in the workspace (``record_finetune`` checks again)."""
    from sqlalchemy import select

    from storage.models import Model

    if session.scalars(select(Model).where(Model.name == name)).first() is not None:
        finetunes.finetuned_model(session, name)  # refuses a model of another kind
    finetunes.refuse_erased(session, name, persons)


def fresh_base(base: str | None, device: str) -> Generator[Progress, None, Any]:
    """A freshly loaded base model (never the worker's cached one: training changes it)."""
    from engine.background import in_background, loading
    from engine.guard.lm import load_language_model

    yield Progress(0.0, f"loading {base or 'the offline default model'}")
    return (yield from in_background(partial(load_language_model, base, device),
                                     loading(base or "the base model", 0.0)))


def _save(ws: Workspace, name: str, lm: Any) -> tuple[Path, str]:
    """Save the weights and tokenizer in a new folder of the workspace; the sha256 of the
    weights file."""
    folder = next_folder(ws.root / MODELS_DIR / slug(name))
    partial_dir = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial_dir, ignore_errors=True)
    write_weights(lm, partial_dir)
    partial_dir.rename(folder)
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    return folder, weights


def next_folder(root: Path) -> Path:
    """``root/v<n>`` above every weights folder there: never one a version registers (a
    count of the folders was, once a retrain had destroyed the earlier ones)."""
    numbers = [int(p.name[1:]) for p in root.glob("v*") if p.is_dir() and p.name[1:].isdigit()]
    return root / f"v{1 + max(numbers, default=0)}"


def write_weights(lm: Any, folder: Path) -> None:
    """Save the model and its tokenizer. A GGUF base (the offline default) is loaded with
    its weights unpacked to float tensors but keeps the GGUF quantizer's mark, which
    transformers refuses to save ("not serializable"): the mark goes first (the weights
    are plain tensors)."""
    model = lm.model
    if getattr(model, "hf_quantizer", None) is not None:
        if any(not p.is_floating_point() for p in model.parameters()):
            raise UnpromptError("the base model's weights stay quantized, so the fine-tuned "
                                "model cannot be saved; give an unquantized --base")
        model.hf_quantizer = None
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
        if hasattr(model, "quantization_method"):
            model.quantization_method = None
        model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _record(ws: Workspace, name: str, folder: Path, sha: str, corpus: str,
            records: list[FactRecord], stats: dict[str, Any], settings: FinetuneSettings,
            base: str | None, operator: str) -> int:
    """Store every person's records as an artifact and the version row, in one go; on
    failure the weights folder and the new artifacts are removed again."""
    try:
        with ExitStack() as stack:
            subjects = {}
            for person in people(records):
                mine = [r for r in records if r.person == person]
                data = "".join(record_line(r) for r in mine).encode()
                artifact = stack.enter_context(stored_artifact(ws, data, "subject-records"))
                subjects[person] = {"records": len(mine), "artifact": artifact}
            with ws.sessions.begin() as session:
                version = finetunes.record_finetune(
                    session, name=name, folder=str(folder),
                    corpus={"format": FORMAT, "file": Path(corpus).name,
                            "records": len(records), "people": len(subjects)},
                    subjects=subjects, operator=operator,
                    details={"base": base or "SmolLM2-135M-Instruct (offline)",
                             "base_spec": base, "weights_sha256": sha,
                             "settings": vars(settings), **stats})
                return version.number
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def record_line(record: FactRecord) -> str:
    import json

    return json.dumps(record.to_dict(), ensure_ascii=False) + "\n"


def subject_records(ws: Workspace, model_name: str) -> list[FactRecord]:
    """Every record of the live version of a fine-tuned model, read back from its
    per-person artifacts."""
    from engine.guard.people import parse_record

    with ws.sessions() as session:
        subjects = finetunes.subjects_of(session, finetunes.finetuned_model(session, model_name))
    records = []
    for person, entry in subjects.items():
        lines = ws.artifacts.get(entry["artifact"]).decode().splitlines()
        records += [parse_record(line, f"records of {person}") for line in lines]
    return records


def forget_subject_job(workspace: str | Path, *, request: int | str, operator: str,
                       encoder: str | None = None, device: str = "auto",
                       cancel: CancelToken | None = None) -> Job:
    """Execute an approved request about one person of a fine-tuned model: build their
    forget rule from the model's records (their questions as positives, the other people's
    as neighbours; their recall ablated on the fine-tuned model's layers, engine.guard.recall),
    store it (their names in an artifact, not the row), enable it and mark the request
    executed, in one transaction."""
    from engine.background import in_background, loading
    from engine.guard.classifier import load_sentence_encoder
    from engine.guard.lm import load_language_model
    from engine.guard.subject_rule import subject_rule_fields
    from storage import requests as reqs
    from storage import rules as store

    ws = Workspace.open(workspace)
    try:
        with ws.sessions() as session:
            found = reqs.get_request(session, request)
            scope = dict(found.scope)
            if "subject_records" not in scope:
                raise UnpromptError(f"request {found.id} is not about a person of a "
                                    "fine-tuned language model")
            reqs.check_executable(session, found, "rule")
            model = finetunes.finetuned_model(session, scope["model"])
            std = float(live_std(session, model))
            folder = live_folder(session, model)
        person = person_of(ws, scope["subject_records"])
        records = subject_records(ws, scope["model"])
        yield Progress(0.05, "loading the fine-tuned model")
        lm = yield from in_background(partial(load_language_model, folder, device),
                                      loading("the fine-tuned model", 0.05))
        yield Progress(0.1, "loading the prompt-classifier encoder")
        enc = yield from in_background(partial(load_sentence_encoder, encoder),
                                       loading("the prompt-classifier encoder", 0.1))
        yield Progress(0.3, "training the person's prompt classifier")
        fields = subject_rule_fields(records, person, enc, std, lm)
        if cancel is not None:
            cancel.check()
        rest = {k: v for k, v in fields.items() if k != "classifier_bytes"}
        params = dict(rest["corruption_params"])
        terms = params.pop(SCOPE_KEY, None)  # the person's name: an artifact, not a row
        pseudonyms = params.pop(PSEUDONYMS_KEY, None)  # pairs of the name's parts: likewise
        values = params.pop(VALUES_KEY, None)  # the person's facts: likewise
        with ExitStack() as stack:
            sha = stack.enter_context(stored_artifact(ws, fields["classifier_bytes"],
                                                      "prompt-classifier"))
            if terms:
                rest["corruption_params"] = {**params, TERMS_ARTIFACT: stack.enter_context(
                    stored_artifact(ws, terms_bytes(terms, pseudonyms, values), "subject-terms"))}
            session = stack.enter_context(ws.sessions.begin())
            llm = store.language_model(session, scope["model"])
            row = store.add_rule(session, llm, scope["rule"],
                                 {**rest, "classifier_artifact": sha}, operator)
            store.enable_rule(session, row, operator, request)
            result = store.rule_dict(session, row)
        yield Progress(1.0, f"rule {scope['rule']} built and enabled")
        return {**result, "request_status": "executed"}
    finally:
        ws.close()


def terms_bytes(terms: list[str], pseudonyms: list[list[str]] | None = None,
                values: list[str] | None = None) -> bytes:
    """The artifact of a person's names: their terms, and their pseudonyms and biased
    values where the rule has them (engine.guard.rule_rows.with_terms reads both forms)."""
    if not pseudonyms:
        return json.dumps(sorted(terms)).encode()
    return json.dumps({"terms": sorted(terms), PSEUDONYMS_KEY: pseudonyms,
                       VALUES_KEY: list(values or [])}).encode()


def live_std(session: Any, model: Any) -> float:
    """The embedding scale of the live fine-tuned weights (the corruption's unit)."""
    from storage.registry import live_version

    return float(live_version(session, model).metrics.get("embedding_std") or 1.0)


def live_folder(session: Any, model: Any) -> str:
    """The folder of the live fine-tuned weights."""
    from storage.registry import live_version

    return str(live_version(session, model).metrics["folder"])


def person_of(ws: Workspace, artifact: str) -> str:
    from engine.guard.people import parse_record

    line = ws.artifacts.get(artifact).decode().splitlines()[0]
    return parse_record(line, "the request's records").person


__all__ = ["SUBJECT_JOBS", "corpus_without", "finetune_model_job", "forget_subject_job",
           "subject_records", "write_corpus"]
