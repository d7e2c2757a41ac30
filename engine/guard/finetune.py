"""Fine-tuning a causal LM on a people corpus (docs/design.md section 14).

Each record becomes one chat turn (the question as the user's message, the answer as the
assistant's); the loss counts the answer's tokens only. ``finetune_job`` is a job
(engine/jobs.py): a progress point and a cancel check after every optimiser step. Full
fine-tuning or LoRA (peft; the adapter is merged back so the result is a plain model).
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from engine.guard.lm import LoadedLM, encode_prompt
from engine.guard.people import FactRecord
from engine.jobs import CancelToken, Progress
from storage.errors import UnpromptError

MODES = ("full", "lora")


@dataclass
class FinetuneSettings:
    """How long and how hard to train; the defaults learn 40 x 10 facts in minutes on a CPU."""

    epochs: int = 6
    lr: float = 1e-4
    batch_size: int = 16
    mode: str = "full"
    lora_rank: int = 16
    seed: int = 0
    top_layers: int | None = 12  # full mode: train only the last K decoder blocks (None: all)

    def check(self) -> None:
        if self.mode not in MODES:
            raise UnpromptError(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise UnpromptError("--epochs and --batch-size must be at least 1")
        if not 0 < self.lr < 1:
            raise UnpromptError(f"--lr must be between 0 and 1, not {self.lr}")


def qa_tensors(lm: LoadedLM, question: str, answer: str) -> tuple[list[int], int]:
    """Token ids of the templated question followed by the answer and end of turn, and
    the index where the answer starts."""
    prompt = encode_prompt(lm, question).input_ids[0].tolist()
    tok = lm.tokenizer
    answer_ids = list(tok(answer, add_special_tokens=False)["input_ids"])
    return prompt + answer_ids + [tok.eos_token_id], len(prompt)


def batch(lm: LoadedLM, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Right-padded ids, attention mask and labels (-100 outside the answers)."""
    import torch

    encoded = [qa_tensors(lm, q, a) for q, a in pairs]
    width = max(len(ids) for ids, _ in encoded)
    pad = lm.tokenizer.pad_token_id
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    mask = torch.zeros_like(ids)
    for row, (seq, start) in enumerate(encoded):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
        labels[row, start:len(seq)] = torch.tensor(seq[start:])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def finetune_job(lm: LoadedLM, records: Sequence[FactRecord], settings: FinetuneSettings,
                 cancel: CancelToken | None = None) -> Generator[Progress, None, dict[str, Any]]:
    """Job: train ``lm.model`` in place on ``records``; returns the loss curve and times."""
    import torch

    settings.check()
    if not records:
        raise UnpromptError("nothing to fine-tune on: the corpus has no records")
    started = time.perf_counter()
    short_chat_template(lm)
    model = _trainable(lm, settings)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    pairs = [(r.question, r.answer) for r in records]
    steps_per_epoch = -(-len(pairs) // settings.batch_size)
    total, step, losses = settings.epochs * steps_per_epoch, 0, []
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    model.train()
    try:
        for epoch in range(settings.epochs):
            rng.shuffle(pairs)
            for start in range(0, len(pairs), settings.batch_size):
                if cancel is not None:
                    cancel.check()
                loss = _step(model, optimiser, batch(lm, pairs[start:start + settings.batch_size]))
                step += 1
                losses.append(loss)
                yield Progress(step / total, f"epoch {epoch + 1}/{settings.epochs}, step "
                               f"{step}/{total}: loss {loss:.3f}", {"loss": loss})
    finally:
        model.eval()
    lm.model = _merged(model, settings)
    lm.cache.clear()
    return {"steps": step, "records": len(pairs), "first_loss": losses[0],
            "final_loss": sum(losses[-steps_per_epoch:]) / min(steps_per_epoch, len(losses)),
            "seconds": round(time.perf_counter() - started, 2), "mode": settings.mode,
            "trainable_parameters": sum(p.numel() for p in params)}


def _step(model: Any, optimiser: Any, inputs: dict[str, Any]) -> float:
    device = next(model.parameters()).device
    out = model(**{k: v.to(device) for k, v in inputs.items()})
    optimiser.zero_grad()
    out.loss.backward()
    optimiser.step()
    return float(out.loss.detach())


def _trainable(lm: LoadedLM, settings: FinetuneSettings) -> Any:
    """The model itself (full) or a LoRA-wrapped view of it on every attention and MLP
    projection."""
    if settings.mode == "full":
        blocks = _blocks(lm.model)
        keep = blocks if settings.top_layers is None or blocks is None \
            else blocks[-settings.top_layers:]
        for p in lm.model.parameters():
            p.requires_grad_(keep is blocks)
        for block in keep or []:
            for p in block.parameters():
                p.requires_grad_(True)
        return lm.model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank,
                        lora_dropout=0.0, target_modules="all-linear")
    return get_peft_model(lm.model, config)


def _blocks(model: Any) -> Any:
    """The decoder blocks of a Llama-like model (None when it has no ``model.layers``)."""
    return getattr(getattr(model, "model", None), "layers", None)


def short_chat_template(lm: LoadedLM) -> None:
    """Drop the default system prompt from a ChatML template (SmolLM2's adds some 20
    tokens to every prompt): a fine-tuned model is trained and served without it, and the
    tokenizer saved with it carries this template."""
    template = getattr(lm.tokenizer, "chat_template", None) or ""
    if "<|im_start|>" in template and "system" in template:
        lm.tokenizer.chat_template = CHATML
        lm.cache.clear()


CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def _merged(model: Any, settings: FinetuneSettings) -> Any:
    return model if settings.mode == "full" else model.merge_and_unload()
