"""Job classes (issue 22): *interactive* jobs never wait behind *long* ones.

An interactive job (forget, evaluate, certify, verify, enable or disable a rule, ask, ...)
takes seconds; a long job (train, pretrain, learn, audit, scrub, rule build or retrain,
loading a language model) takes minutes. The worker runs one long job at a time and
interleaves interactive jobs between the long job's steps (``engine.worker``), so a forget
starts within a step of its submission whatever runs. A target not listed here is long:
an unknown job is never interleaved.
"""

from __future__ import annotations

from typing import Any

INTERACTIVE, LONG = "interactive", "long"

INTERACTIVE_TARGETS = frozenset({
    "engine.forget:forget_job",
    "engine.image_jobs:evaluate_model",
    "reports.certify_service:certify_job",
    "engine.guard.registry_jobs:set_rule_status",
    "engine.guard.registry_jobs:evaluate_rule_job",
    "engine.guard.registry_jobs:ask_job",
    "engine.guard.registry_jobs:list_rules_job",
    "serving.try_it:try_image_job",
})


def job_class(target: str, kwargs: dict[str, Any] | None = None) -> str:
    """``interactive`` or ``long`` for a job target and its kwargs.

    A forget with a ``scrub`` fine-tunes the shared weights afterwards: that is long."""
    kwargs = kwargs or {}
    if target == "engine.forget:forget_job" and kwargs.get("scrub") is not None:
        return LONG
    return INTERACTIVE if target in INTERACTIVE_TARGETS else LONG


def check_class(value: str) -> str:
    if value not in (INTERACTIVE, LONG):
        raise ValueError(f"job class {value!r} is neither {INTERACTIVE!r} nor {LONG!r}")
    return value
