"""Many byte patterns searched in one pass over a large file (docs/design.md section 16).

A residual-scan proof searches a backbone of hundreds of MB for the tensors of every
class at once. Reading the buffer as 8-byte words at every 8th offset is enough: an
occurrence of a pattern puts one of any 8 consecutive windows of it on such an offset.
Each pattern therefore contributes 8 words (from its most varied stretch); a word of
the buffer that equals one of them is a candidate, confirmed by comparing the whole
pattern. A pattern with too little variety for its words to mean anything (a constant
run) is searched for as bytes instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from storage.residue import scan_file

WORD = 8
STRETCH = 2 * WORD - 1  # 8 overlapping words
_MIX = np.uint64(0x9E3779B97F4A7C15)
_BITS = 22  # the candidate table: 4 Mi entries


class WordFinder:
    """``finder(buffer, found)`` returns the indices of the patterns in ``buffer``."""

    def __init__(self, patterns: list[bytes]) -> None:
        self.patterns = patterns
        self.plain: list[int] = []
        words, owners = [], []
        for i, pattern in enumerate(patterns):
            at = _stretch(pattern)
            if at is None:
                self.plain.append(i)
                continue
            for r in range(WORD):
                words.append(int.from_bytes(pattern[at + r:at + r + WORD], "little"))
                owners.append((i, at + r))
        order = np.argsort(np.array(words, dtype=np.uint64), kind="stable")
        self.words = np.array(words, dtype=np.uint64)[order]
        self.owners = [owners[k] for k in order]
        self.table = np.zeros(1 << _BITS, dtype=bool)
        self.table[_slots(self.words)] = True

    def __call__(self, buffer: bytes, found: set[int]) -> set[int]:
        out = {i for i in self.plain if i not in found and self.patterns[i] in buffer}
        if not len(self.words) or len(buffer) < WORD:
            return out
        data = np.frombuffer(buffer, dtype=np.uint8)
        words = data[:len(data) // WORD * WORD].view("<u8")
        candidates = np.flatnonzero(self.table[_slots(words)])
        for k in candidates[np.isin(words[candidates], self.words)]:
            out |= self._confirm(buffer, int(k) * WORD, int(words[k]), found | out)
        return out

    def _confirm(self, buffer: bytes, at: int, word: int, skip: set[int]) -> set[int]:
        out = set()
        first = int(np.searchsorted(self.words, np.uint64(word)))
        for k in range(first, len(self.words)):
            if int(self.words[k]) != word:
                break
            i, offset = self.owners[k]
            pattern, begin = self.patterns[i], at - offset
            if i not in skip and begin >= 0 and buffer[begin:begin + len(pattern)] == pattern:
                out.add(i)
        return out


def _slots(words: np.ndarray) -> np.ndarray:
    return ((words * _MIX) >> np.uint64(64 - _BITS)).astype(np.intp)


def _stretch(pattern: bytes) -> int | None:
    """Where the pattern's most varied ``STRETCH`` bytes start; ``None`` when even those
    hold fewer than 6 distinct bytes (words of a constant run would match everywhere)."""
    last = min(len(pattern) - STRETCH, 512)
    if last < 0:
        return None
    at = max(range(last + 1), key=lambda i: (len(set(pattern[i:i + STRETCH])), -i))
    return at if len(set(pattern[at:at + STRETCH])) >= 6 else None


def search_file(path: Path, patterns: list[bytes]) -> set[int]:
    """Indices of the patterns that occur in the file at ``path``."""
    if not patterns:
        return set()
    overlap = max(len(p) for p in patterns) - 1
    return scan_file(path, overlap, WordFinder(patterns))[1]
