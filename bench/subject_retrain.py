"""Benchmark: the retrain follow-up of a fine-tuned language model (docs/design.md 18.1).

Fine-tunes the offline SmolLM2 on a corpus of fictitious people (`lm finetune`), files and
approves one request per forgotten person (their forget rule is built and enabled: the
request is suppressed), then runs `retrain N`: a fine-tune from the base without them,
promoted, the earlier weights destroyed, the rules retired, the workspace scanned. Reports
the wall time of every step, the retrain's own figures (mean normalised answer probability
of the kept and of the forgotten people, live and retrained), the residual scan and the
bytes of the earlier weights left in the workspace (must be 0). JSON to
bench/results/subject_retrain.json.

    python bench/subject_retrain.py [--people 40 --facts 10 --forget 2 --epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "subject_retrain.json"


def timed(times: dict[str, float], name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    times[name] = round(time.perf_counter() - started, 2)
    print(f"[{times[name]:8.1f} s] {name}", flush=True)
    return result


def drain(job: Any) -> Any:
    from engine.jobs import run_job

    return run_job(job, lambda p: None)


def request_and_forget(root: Path, person: str) -> int:
    """File, approve and execute one request about ``person`` (their rule is enabled)."""
    from engine.guard import subject_jobs as jobs
    from tests import approvals

    rid = approvals.approved_request(root, person)
    drain(jobs.forget_subject_job(root, request=rid, operator="bob"))
    return rid


def accept(root: Path) -> None:
    """The operator's signed acceptance of a held retrain (as Held retrain… records it)."""
    from storage import finetunes
    from storage.retrain import decide_held
    from storage.workspace import Workspace
    from tests import approvals

    ws = Workspace.open(root)
    try:
        with ws.sessions.begin() as session:
            approvals.ensure_operator(session, "bob")
            decide_held(session, finetunes.finetuned_model(session, "crm"), "bob",
                        approvals.passphrase_of("bob"), True, "benchmark: accepted")
    finally:
        ws.close()


def earlier_bytes_left(root: Path, tensors: list[bytes]) -> int:
    everything = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    return sum(len(t) for t in tensors if t in everything)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--facts", type=int, default=10)
    parser.add_argument("--forget", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    from engine.guard import subject_jobs as jobs
    from engine.guard.people import generate, people, write_corpus
    from engine.guard.subject_retrain import _tensors
    from engine.retrain import retrain_job

    times: dict[str, float] = {}
    folder = Path(tempfile.mkdtemp(prefix="subject-retrain-"))
    corpus = write_corpus(generate(args.people, args.facts, args.seed), folder / "p.jsonl")
    root = folder / "ws"
    tuned = timed(times, "finetune", drain, jobs.finetune_model_job(
        root, corpus=str(corpus), name="crm", operator="ann", epochs=args.epochs,
        device="cpu"))
    gone = people(generate(args.people, args.facts, args.seed))[:args.forget]
    for i, person in enumerate(gone):
        timed(times, f"request_{i + 1}_suppressed", request_and_forget, root, person)
    v1 = _tensors(Path(tuned["folder"]))
    out = timed(times, "retrain_follow_up", drain, retrain_job(
        root, model_name="crm", operator="carol", device="cpu"))
    held = None
    if out["status"] != "promoted":  # below retrain_margin: accept, then promote
        held = {k: out[k] for k in ("retained_live", "retained_retrain", "margin")}
        print("held:", held, flush=True)
        accept(root)
        out = timed(times, "promote_after_acceptance", drain, retrain_job(
            root, model_name="crm", operator="carol", device="cpu"))
    kept = {t for t in _tensors(Path(out["folder"]))}
    trained = [t for t in v1 if t not in kept and len(set(t[:64])) > 1]
    result = {
        "setup": {**vars(args), "threads": torch.get_num_threads(),
                  "load_average": os.getloadavg(), "device": "cpu"},
        "times_s": times, "finetune_steps": tuned["steps"], "held": held,
        "retrain": {k: out[k] for k in (
            "status", "from_version", "version", "covered", "people_left_out", "records",
            "train_seconds", "promote_ms", "retained_live", "retained_retrain",
            "forgotten_live", "forgotten_retrain", "folders_purged", "purged")},
        "residual_scan": {k: out["residual_scan"][k] for k in (
            "clean", "patterns", "files_scanned", "bytes_scanned")},
        "earlier_trained_tensors": len(trained),
        "earlier_bytes_left": earlier_bytes_left(root, trained),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
