"""The pre-forgettable ViT (docs/design.md section 4; Hendrix et al., arXiv 2509.15230).

A timm ViT backbone plus, for every class id, one learned prompt token (prepended after
the patch embedding, with no positional embedding), one head row (weight and bias in one
``dim + 1`` vector) and optionally per-class deep prompt tokens (one per later layer).
Everything a class owns sits under its id in ``ParameterDict``s, so ``remove_classes``
deletes exactly its parameters and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.device import to_device
from engine.prompt_seq import grouped, key_mask, prompt_plan, slot_tokens
from storage.errors import NotFoundError, RefusedError, UnpromptError

MODES = ("isolated", "frozen", "lora", "full", "independent")
ADAPTERS = ("none", "deep")
LORA_TARGETS = r".*attn\.(qkv|proj)"
PROMPT_STD = 0.02


class PreForgettableViT(nn.Module):
    """ViT whose every class is bound to its own prompt token and head row."""

    def __init__(self, class_ids: Iterable[int], backbone: str = "vit_tiny_patch16_224",
                 img_size: int = 224, patch_size: int = 16, in_chans: int = 3,
                 mode: str = "full", pretrained: str = "none", adapter: str | None = None,
                 overrides: Mapping[str, Any] | None = None, lora_r: int = 4,
                 backbone_state: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise UnpromptError(f"Unknown training mode {mode!r}; choose one of: "
                                f"{', '.join(MODES)}.")
        adapter = adapter or ("deep" if mode == "isolated" else "none")
        if adapter not in ADAPTERS:
            raise UnpromptError(f"Unknown adapter {adapter!r}; choose 'none' or 'deep'.")
        self.config = {"backbone": backbone, "img_size": img_size, "patch_size": patch_size,
                       "in_chans": in_chans, "mode": mode, "adapter": adapter,
                       "overrides": dict(overrides or {}), "lora_r": lora_r}
        self.backbone = build_backbone(backbone, img_size, patch_size, in_chans,
                                       overrides or {}, pretrained)
        if backbone_state is not None:
            load_backbone_state(self.backbone, backbone_state, "the given backbone")
        if mode == "lora":
            self.backbone = inject_lora(self.backbone, lora_r)
        self.prompts = nn.ParameterDict()
        self.heads = nn.ParameterDict()
        self.deep = nn.ParameterDict()
        for cid in sorted(set(int(c) for c in class_ids)):
            self.add_class(cid)
        self.set_trainable()

    # ---------------------------------------------------------------- classes
    @property
    def mode(self) -> str:
        return self.config["mode"]

    @property
    def dim(self) -> int:
        return int(self.backbone.embed_dim)

    @property
    def class_ids(self) -> list[int]:
        """Remaining class ids, in logit-column order."""
        return sorted(int(k) for k in self.prompts.keys())

    def add_class(self, class_id: int) -> None:
        """Give ``class_id`` a fresh prompt, head row (and deep tokens); others untouched."""
        key = str(int(class_id))
        if key in self.prompts:
            raise RefusedError(f"Class {class_id} already has a prompt in this model.")
        ref = next(self.backbone.parameters())
        self.prompts[key] = nn.Parameter(_trunc_normal((self.dim,), ref, PROMPT_STD))
        head = _trunc_normal((self.dim + 1,), ref)
        head[-1] = 0.0
        self.heads[key] = nn.Parameter(head)
        depth = len(self.backbone.blocks)
        if self.config["adapter"] == "deep" and depth > 1:
            self.deep[key] = nn.Parameter(_trunc_normal((depth - 1, self.dim), ref, PROMPT_STD))

    def remove_classes(self, class_ids: Iterable[int]) -> None:
        """Delete every parameter the given classes own (their prompt, head row, adapter)."""
        keys = [str(int(c)) for c in class_ids]
        missing = [k for k in keys if k not in self.prompts]
        if missing:
            raise NotFoundError(f"Class {missing[0]} is not (or no longer) in this model.")
        for key in keys:
            for store in (self.prompts, self.heads, self.deep):
                if key in store:
                    del store[key]

    def class_parameters(self, class_id: int) -> dict[str, nn.Parameter]:
        """The tensors class ``class_id`` owns, by artifact name."""
        key = str(int(class_id))
        if key not in self.prompts:
            raise NotFoundError(f"Class {class_id} is not in this model.")
        owned = {"prompt": self.prompts[key], "head": self.heads[key]}
        if key in self.deep:
            owned["deep"] = self.deep[key]
        return owned

    def columns(self, labels: torch.Tensor) -> torch.Tensor:
        """Map class ids to logit columns."""
        lookup = torch.full((max(self.class_ids, default=0) + 1,), -1, dtype=torch.long)
        lookup[self.class_ids] = torch.arange(len(self.class_ids))
        cols = lookup.to(labels.device)[labels]
        if (cols < 0).any():
            raise NotFoundError("Some labels belong to classes this model does not have.")
        return cols

    # ---------------------------------------------------------------- training modes
    def set_trainable(self, only_classes: Sequence[int] | None = None) -> None:
        """Requires-grad per mode; ``only_classes`` freezes everything but those classes."""
        mode = self.mode if only_classes is None else "isolated"
        for name, param in self.backbone.named_parameters():
            param.requires_grad_(mode == "full" or (mode == "lora" and "lora_" in name))
        keep = None if only_classes is None else {str(int(c)) for c in only_classes}
        for store in (self.prompts, self.heads, self.deep):
            for key, param in store.items():
                param.requires_grad_(keep is None or key in keep)

    def train(self, mode: bool = True) -> PreForgettableViT:
        super().train(mode)
        if self.mode in ("isolated", "frozen"):
            self.backbone.eval()  # a frozen backbone never runs drop-path / dropout
        return self

    # ---------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, prompt_mask: torch.Tensor | None = None,
                groups: int = 1) -> torch.Tensor:
        """Logits ``(B, C)`` over ``class_ids``; ``prompt_mask`` ``(B, C)`` picks prompts.

        ``groups`` > 1 runs rows with similar prompt counts together, so each group's
        sequence is padded only to its own longest (same logits, fewer tokens)."""
        tables = self.class_tables()
        if groups > 1 and prompt_mask is not None and len(x) > 1:
            return grouped(lambda rows, mask: self._logits(
                x[to_device(rows, x.device)], tables, mask), prompt_mask, groups)
        return self._logits(x, tables, prompt_mask)

    def features(self, x: torch.Tensor, prompt_mask: torch.Tensor | None = None) -> torch.Tensor:
        """CLS features with the chosen prompts present (all remaining ones by default)."""
        return self._features(x, self.class_tables(), prompt_mask)

    def class_tables(self) -> dict[str, torch.Tensor | None]:
        """Every class's tensors stacked once per forward, rows in ``class_ids`` order."""
        keys = [str(c) for c in self.class_ids]
        if not keys:
            return {"prompts": None, "heads": None, "deep": None}
        deep = torch.stack([self.deep[k] for k in keys]) if self.deep else None
        return {"prompts": torch.stack([self.prompts[k] for k in keys]),
                "heads": torch.stack([self.heads[k] for k in keys]), "deep": deep}

    def _logits(self, x: torch.Tensor, tables: dict[str, Any],
                prompt_mask: torch.Tensor | None) -> torch.Tensor:
        feats = self._features(x, tables, prompt_mask)
        rows = tables["heads"]
        if rows is None:
            return feats.new_zeros((feats.shape[0], 0))
        return feats @ rows[:, :-1].T + rows[:, -1]

    def _features(self, x: torch.Tensor, tables: dict[str, Any],
                  prompt_mask: torch.Tensor | None) -> torch.Tensor:
        """Only the prompts a row has enter its sequence (docs/design.md section 16)."""
        bb = self.backbone
        tokens = bb.norm_pre(bb.patch_drop(bb._pos_embed(bb.patch_embed(x))))
        n_pre, batch = bb.num_prefix_tokens, tokens.shape[0]
        index, keep = prompt_plan(prompt_mask, len(self.class_ids), batch, tokens.device)
        n_slots = 0 if tables["prompts"] is None else (
            index.shape[1] if index is not None else len(self.class_ids))
        attn_mask = key_mask(keep, tokens.shape[1] + n_slots, n_pre)
        for depth, block in enumerate(bb.blocks):
            slots = slot_tokens(tables, depth, index, batch) if n_slots else None
            if slots is not None:
                kept = tokens[:, n_pre + n_slots:] if depth else tokens[:, n_pre:]
                tokens = torch.cat([tokens[:, :n_pre], slots.to(tokens.dtype), kept], 1)
            tokens = block(tokens, attn_mask=attn_mask)
        tokens = bb.norm(tokens)
        tokens = torch.cat([tokens[:, :n_pre], tokens[:, n_pre + n_slots:]], 1)
        return bb.forward_head(tokens, pre_logits=True)


def _trunc_normal(shape: tuple[int, ...], like: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    out = torch.empty(shape, dtype=like.dtype, device=like.device)
    return nn.init.trunc_normal_(out, std=std, a=-2 * std, b=2 * std)


# -------------------------------------------------------------------- backbone

def build_backbone(name: str, img_size: int, patch_size: int, in_chans: int,
                   overrides: Mapping[str, Any], pretrained: str = "none") -> nn.Module:
    """A timm ViT without a head; ``pretrained`` is 'none', 'hub[:tag]' or a weights file."""
    import timm

    if not name.startswith("vit_"):
        raise UnpromptError(f"Backbone {name!r} is not a timm ViT (its name must start 'vit_').")
    hub = pretrained == "hub" or pretrained.startswith("hub:")
    model_name = f"{name}.{pretrained[4:]}" if pretrained.startswith("hub:") else name
    kwargs = dict(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=0,
                  **dict(overrides))
    try:
        model = timm.create_model(model_name, pretrained=hub, **kwargs)
    except Exception as exc:  # timm raises RuntimeError/TypeError/AssertionError/HTTP errors
        if hub:
            raise UnpromptError(f"Could not load the pretrained {model_name} weights from the "
                                f"timm hub (no network or unknown tag): {_short(exc)}.") from None
        raise UnpromptError(f"Could not build the backbone {name!r} with {kwargs}: "
                            f"{_short(exc)}.") from None
    if not hub and pretrained not in ("", "none"):
        load_backbone_state(model, read_weights_file(Path(pretrained)), pretrained)
    return model


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` or torch file (weights only, no code)."""
    if not path.is_file():
        raise NotFoundError(f"The weights file {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt files raise many different types
        raise UnpromptError(f"{path} is not a readable weights file: {_short(exc)}.") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UnpromptError(f"{path} does not hold a state dict of tensors.")
    return state


def load_backbone_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ViT weights, dropping any head and resizing the position embedding."""
    from timm.layers import resample_abs_pos_embed

    clean = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        if not key.startswith("head."):
            clean[key] = value
    pos = clean.get("pos_embed")
    if pos is not None and model.pos_embed is not None and pos.shape != model.pos_embed.shape:
        n_pre = 0 if getattr(model, "no_embed_class", False) else model.num_prefix_tokens
        clean["pos_embed"] = resample_abs_pos_embed(
            pos, new_size=list(model.patch_embed.grid_size), num_prefix_tokens=n_pre)
    try:
        missing, unexpected = model.load_state_dict(clean, strict=False)
    except RuntimeError as exc:
        raise UnpromptError(f"The weights in {source} do not fit this backbone: "
                            f"{_short(exc)}.") from None
    if missing or unexpected:
        raise UnpromptError(f"The weights in {source} do not fit this backbone "
                            f"({len(missing)} missing, {len(unexpected)} unexpected tensors).")


def inject_lora(backbone: nn.Module, rank: int) -> nn.Module:
    """LoRA (peft) on every attention qkv and output projection; base weights frozen."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, bias="none",
                        target_modules=LORA_TARGETS)
    return inject_adapter_in_model(config, backbone)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200].rstrip(".")
