"""Choose the sentences of an article that answer a question, quoted exactly as printed."""
from __future__ import annotations

import numpy as np

from bot.question import CUES, Question, Weights
from index.store import StoredArticle
from index.vectors import SentenceVectors

# A sentence's score: its cosine to the question rescaled to 0..1 within the article, plus these.
ASK_TERMS = 1.0        # x the weighted share of an ask clause's terms in the sentence
ALL_TERMS = 0.5        # x the weighted share of all the question's terms
CUE = 1.0              # per cue the sentence shows (a date, a duration, a list), divided by how many sentences show it


class SentencePicker:
    """Score sentences by meaning (cosine to the question), shared terms of each ask clause, and answer cues."""

    def __init__(self, sentence_vectors: SentenceVectors, question: Question, query: np.ndarray, weights: Weights):
        self.sentence_vectors, self.question, self.query, self.weights = sentence_vectors, question, query, weights

    def _clause_scores(self, sentences: list[str], meaning: np.ndarray, clause: str,
                       terms: tuple[str, ...]) -> list[float]:
        shown = [[bool(has.search(s)) for s in sentences] for asks, has in CUES if asks.search(clause)]
        # a cue only one sentence shows points at it; a cue every sentence shows (digits) says little
        cue = [sum(CUE / sum(flags) for flags in shown if flags[i]) for i in range(len(sentences))]
        return [meaning[i] + ASK_TERMS * self.weights.coverage(s, terms) + ALL_TERMS * self.weights.coverage(s)
                + cue[i] for i, s in enumerate(sentences)]

    def __call__(self, article: StoredArticle, n: int) -> list[str]:
        """Return up to n sentences in article order: the best one for each ask clause first, then the best overall."""
        found, vectors = self.sentence_vectors(article)
        sentences = [x.text for x in found]
        cosine = vectors @ self.query
        spread = float(cosine.max() - cosine.min())
        meaning = (cosine - cosine.min()) / spread if spread > 0 else np.zeros_like(cosine)
        per_clause = [self._clause_scores(sentences, meaning, c, t) for c, t in self.question.asks]
        chosen: list[int] = []
        for scores in per_clause:
            best = max(range(len(sentences)), key=lambda i: scores[i])
            if best not in chosen:
                chosen.append(best)
        overall = [max(s[i] for s in per_clause) for i in range(len(sentences))]
        for i in sorted(range(len(sentences)), key=lambda i: -overall[i]):
            if len(chosen) >= n:
                break
            if i not in chosen:
                chosen.append(i)
        return [sentences[i] for i in sorted(chosen[:max(n, 1)])]
