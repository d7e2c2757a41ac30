"""Guarded language models: ECO forget rules (docs/design.md sections 5 and 6).

Public API (torch and transformers load with this package; import it lazily from the CLI):

- ``load_language_model(spec=None, device="auto") -> LoadedLM``; ``answer(lm, prompt, n)``
- ``load_sentence_encoder()``; ``train_classifier``; ``PromptClassifier.to_bytes/from_bytes``
- ``CORRUPTIONS``, ``make_corruption`` and the pure corruption functions
- ``Guard``, ``GuardRule``, ``guarded_answer(lm, guard, prompt, ...) -> GuardedAnswer``
- ``RuleSpec``, ``load_rule_file``, ``rule_from_files``, ``load_demo_rule``
- ``train_rule_job(lm, rule, ...) -> TrainedRule`` and ``evaluate_rule(lm, rule, guard_rule)``
  (jobs: generators that yield Progress and return their result)
- ``zo_minimize`` / ``zo_search``: the zeroth-order scalar optimiser

Registry jobs (workspace in, plain data out; the CLI and the GUI worker run them) live in
``engine.guard.registry_jobs`` (``GUARD_JOBS``); rule rows in ``storage.rules``.
"""

from engine.guard.classifier import (
    Calibration,
    PromptClassifier,
    SentenceEncoder,
    load_sentence_encoder,
    train_classifier,
)
from engine.guard.corruption import CORRUPTIONS, DEFAULT_CORRUPTION, make_corruption
from engine.guard.evaluate import evaluate_rule
from engine.guard.guard import Guard, GuardedAnswer, GuardRule, Verdict, guarded_answer
from engine.guard.knowledge import KnowledgeScore, contains_key
from engine.guard.lm import LoadedLM, answer, load_language_model
from engine.guard.rules import (
    Example,
    RuleSpec,
    load_demo_rule,
    load_general_prompts,
    load_ignorant_prompts,
    load_rule_file,
    rule_from_files,
)
from engine.guard.train import TrainedRule, train_rule_job
from engine.guard.zo import ZOResult, zo_minimize, zo_search

__all__ = [
    "CORRUPTIONS", "DEFAULT_CORRUPTION", "Calibration", "Example", "Guard", "GuardRule",
    "GuardedAnswer", "KnowledgeScore", "LoadedLM", "PromptClassifier", "RuleSpec",
    "SentenceEncoder", "TrainedRule", "Verdict", "ZOResult", "answer", "contains_key",
    "evaluate_rule", "guarded_answer", "load_demo_rule", "load_general_prompts",
    "load_ignorant_prompts", "load_language_model", "load_rule_file", "load_sentence_encoder",
    "make_corruption", "rule_from_files", "train_classifier", "train_rule_job", "zo_minimize",
    "zo_search",
]
