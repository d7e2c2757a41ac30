"""Fixtures for the guard tests: a tiny random Llama with a byte tokenizer, a hashing encoder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import pytest
import torch

from tests.guard.finetuned import crm_suppressed  # noqa: F401  (a shared fixture)

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                 "{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_tokenizer(chat: bool = True):
    """Byte-level tokenizer (one token per byte) with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|endoftext|>",
                                  eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHAT_TEMPLATE if chat else None
    return tok


def tiny_lm(chat: bool = True, seed: int = 0):
    """A randomly initialised two-layer Llama (hidden size 32) wrapped as a LoadedLM."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.guard.lm import LoadedLM

    tok = tiny_tokenizer(chat)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)
    return LoadedLM(LlamaForCausalLM(config).eval(), tok, "tiny-llama", "memory")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread (and do not fight over a shared CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def lm():
    return tiny_lm()


class HashEncoder:
    """A stand-in for MiniLM: L2-normalised hashed bag of words (64 dims), instant."""

    name = "test-hash-encoder"

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        out = torch.full((len(texts), 64), 1e-3)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        return torch.nn.functional.normalize(out, dim=-1)


@pytest.fixture()
def encoder() -> HashEncoder:
    return HashEncoder()


def tiny_encoder_model(tok):
    """A randomly initialised one-layer BERT on the byte tokenizer: a stand-in for MiniLM."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=300, pad_token_id=tok.pad_token_id)
    return BertModel(config).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny Llama saved as a model folder (what `--model DIR` loads)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    lm = tiny_lm()
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory):
    """The tiny BERT saved as an encoder folder (what `guard load --encoder DIR` loads)."""
    folder = tmp_path_factory.mktemp("tiny-encoder")
    tok = tiny_tokenizer(chat=False)
    tiny_encoder_model(tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
