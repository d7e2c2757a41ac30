"""What a forget rule is made of: example prompts, with answers where known, and their splits.

A rule file is JSON (the shape of ``data/harry_potter.json``) or plain text with one prompt per
line, optionally ``prompt<TAB>answer<TAB>key1;key2``. Examples marked ``split: test`` are held
out from training and used only to measure the classifier; ``split: calibration`` marks prompts
written apart from the training examples that only choose the classifier's threshold. A JSON
rule may also name ``aliases`` (a name -> the other names it goes by), ``terms`` (the topic's
names) and ``neighbour_terms`` (names of the topics next to it) for augmentation
(engine/guard/augment.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from storage.errors import NotFoundError, UnpromptError

DATA = Path(__file__).resolve().parent / "data"
DEMO_RULE = DATA / "harry_potter.json"
GENERAL_PROMPTS = DATA / "general_prompts.txt"
IGNORANT_PROMPTS = DATA / "ignorant.json"
SPLITS = ("train", "test", "calibration")
HOLD_OUT_FROM = 20  # parts with fewer examples and no split fields are not held out


@dataclass(frozen=True)
class Example:
    """One prompt; ``keys`` are the terms a correct answer contains (any one suffices)."""

    prompt: str
    answer: str = ""
    keys: tuple[str, ...] = ()
    split: str = "train"
    group: str = ""

    @classmethod
    def from_dict(cls, item: dict[str, Any] | str, hold_out: bool = True) -> Example:
        """From JSON; without a ``split`` field, a hash holds out about a quarter (if allowed)."""
        if isinstance(item, str):
            item = {"prompt": item}
        keys = item.get("keys", item.get("key")) or ()
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        prompt = str(item.get("prompt", ""))
        split = item.get("split") or (hashed_split(prompt) if hold_out else "train")
        if split not in SPLITS:
            raise UnpromptError(f"Unknown split {split!r}; use 'train', 'test' or "
                                "'calibration'.")
        return cls(prompt.strip(), str(item.get("answer") or ""), keys, split,
                   str(item.get("group") or ""))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keys"] = list(self.keys)
        return data


@dataclass
class RuleSpec:
    """A forget rule before training: forget, neighbour-retain and general-retain examples."""

    name: str
    description: str = ""
    forget: list[Example] = field(default_factory=list)
    retain: list[Example] = field(default_factory=list)
    general: list[Example] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    terms: list[str] = field(default_factory=list)
    neighbour_terms: list[str] = field(default_factory=list)

    def split(self, part: str, split: str) -> list[Example]:
        return [e for e in getattr(self, part) if e.split == split]

    def to_dict(self) -> dict[str, Any]:
        """JSON for the registry's ``examples`` column (and for rule files)."""
        vocabulary = {k: getattr(self, k) for k in VOCABULARY if getattr(self, k)}
        return {"name": self.name, "description": self.description, **vocabulary,
                **{part: [e.to_dict() for e in getattr(self, part)]
                   for part in ("forget", "retain", "general")}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str | None = None) -> RuleSpec:
        spec = cls(name or str(data.get("name") or ""), str(data.get("description") or ""),
                   *[_examples(data.get(part) or []) for part in ("forget", "retain", "general")],
                   *_vocabulary(data))
        spec.validate()
        return spec

    def validate(self) -> None:
        """An UnpromptError for a rule that cannot be trained."""
        if not self.name.strip():
            raise UnpromptError("A forget rule needs a name.")
        if not self.forget:
            raise UnpromptError(f"The rule {self.name!r} has no forget examples.")
        if any(not e.prompt for e in [*self.forget, *self.retain, *self.general]):
            raise UnpromptError(f"The rule {self.name!r} contains an empty example prompt.")


VOCABULARY = ("aliases", "terms", "neighbour_terms")


def _vocabulary(data: dict[str, Any]) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """The rule's optional names: ``aliases`` (name -> other names) and the two term lists."""
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict) or not all(
            isinstance(k, str) and _strings(v) for k, v in aliases.items()):
        raise UnpromptError("A rule's 'aliases' must map each name to a list of other names.")
    terms = [data.get(k) or [] for k in VOCABULARY[1:]]
    for key, items in zip(VOCABULARY[1:], terms, strict=True):
        if not _strings(items):
            raise UnpromptError(f"A rule's {key!r} must be a list of names.")
    return {k: list(v) for k, v in aliases.items()}, list(terms[0]), list(terms[1])


def _strings(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, str) and i.strip() for i in items)


def _examples(items: list[Any]) -> list[Example]:
    """Examples of one part; small parts (< HOLD_OUT_FROM) are kept whole for training."""
    return [Example.from_dict(i, hold_out=len(items) >= HOLD_OUT_FROM) for i in items]


def hashed_split(text: str, test_share: float = 0.25) -> str:
    """A stable train / test split from the text's hash (independent of file order)."""
    bucket = int(hashlib.sha256(text.strip().encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if bucket < test_share else "train"


def load_rule_file(path: str | Path, name: str | None = None) -> RuleSpec:
    """A RuleSpec from a JSON rule file or a text file of forget prompts."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"No rule file at {path}.")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnpromptError(f"The rule file {path} is not valid JSON (line "
                                f"{getattr(exc, 'lineno', '?')}).") from exc
        return RuleSpec.from_dict(data, name)
    return RuleSpec.from_dict({"forget": read_examples(path)}, name or path.stem)


def rule_from_files(name: str, forget_file: str | Path, retain_file: str | Path | None = None,
                    description: str = "") -> RuleSpec:
    """The rule of `guard rule add NAME --forget-file F [--retain-file F2]`."""
    forget = load_rule_file(forget_file, name)
    retain = list(forget.retain)
    if retain_file is not None:
        extra = Path(retain_file)
        if not extra.is_file():
            raise NotFoundError(f"No retain file at {extra}.")
        retain += _examples(read_examples(extra))
    spec = replace(forget, name=name, description=description or forget.description,
                   retain=retain)
    spec.validate()
    return spec


def read_examples(path: Path) -> list[dict[str, Any]]:
    """Lines of ``prompt[<TAB>answer[<TAB>key1;key2]]``; blank lines and ``#`` comments skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UnpromptError(f"The file {path} is not UTF-8 text.") from exc
    items = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split("\t")]
        answer = cells[1] if len(cells) > 1 else ""
        keys = [k.strip() for k in cells[2].split(";") if k.strip()] if len(cells) > 2 else []
        items.append({"prompt": cells[0], "answer": answer, "keys": keys or ([answer] if answer
                                                                             else [])})
    return items


def load_demo_rule() -> RuleSpec:
    """The shipped `harry-potter` rule."""
    return load_rule_file(DEMO_RULE)


def load_general_prompts() -> list[Example]:
    """The bundled, varied everyday prompts: negatives for every rule's classifier."""
    lines = GENERAL_PROMPTS.read_text(encoding="utf-8").splitlines()
    return [Example(p.strip(), split=hashed_split(p), group="general")
            for p in lines if p.strip()]


def load_ignorant_prompts() -> list[Example]:
    """Questions about an invented saga: what any model scores when it cannot know."""
    data = json.loads(IGNORANT_PROMPTS.read_text(encoding="utf-8"))
    return [Example.from_dict({**item, "split": "test"}) for item in data["prompts"]]
