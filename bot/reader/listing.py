"""Which articles a listing question asks for ("哪些医院组织过献血？", "7月12日那天有哪些活动？"): a fitted model.

Every candidate article (the retrieved ones, and with a day or period asked every article of that time)
gets a few features that carry over to new wording: how much of the question it covers (IDF-weighted,
leaving out words that only name the kind of thing asked: 活动, 单位), that share against the best
candidate's, in its headline and unit, its vector similarity against the best, its fused retrieval
score, whether its event happened in the time asked, and whether it names the places asked. A logistic
regression fitted by `bulletin-bot fit` on the labelled listing questions (their gold articles) scores
them; those at or above the fitted threshold are listed. A question naming only a time lists every article
of that time (bot.wording.names_only_a_time).
"""
from __future__ import annotations

import math

import numpy as np

from bot.question import GENERIC, Question, Weights
from bot.reader.features import named_places
from index.retrieval import Hit, Retriever
from index.store import StoredArticle

LISTING_FEATURES = ("cov", "cov_rel", "cov_all", "cov_head", "cos", "cos_gap", "score_rel", "in_time", "dated",
                    "places_ok", "n_log")


def candidates(question: Question, weights: Weights, hits: list[Hit], retriever: Retriever,
               articles: dict[int, StoredArticle]) -> tuple[list[StoredArticle], np.ndarray]:
    """Return the candidate articles of a listing question and their LISTING_FEATURES (one row each)."""
    when = question.when
    by_id = {h.article.id: h for h in hits}
    on = {a.id for a in retriever.articles_on(when)} if when is not None and not when.vague else set()
    ids = list(dict.fromkeys([*by_id, *sorted(on)]))
    if not ids:
        return [], np.zeros((0, len(LISTING_FEATURES)), dtype=np.float32)
    cov = {i: weights.coverage(articles[i].text, skip=GENERIC) for i in ids}
    cos = {i: by_id[i].cosine if i in by_id else 0.0 for i in ids}
    score = {i: by_id[i].score if i in by_id else 0.0 for i in ids}
    best_cov = max(cov.values()) or 1.0
    best_cos = max(cos.values())
    best_score = max(score.values()) or 1.0
    places = named_places(question.text)
    rows = []
    for i in ids:
        a = articles[i]
        rows.append([cov[i], cov[i] / best_cov, weights.coverage(a.text), weights.coverage(f"{a.title}\n{a.unit}", skip=GENERIC),
                     cos[i], cos[i] - best_cos, score[i] / best_score, float(i in on), float(bool(on)),
                     float(all(p in a.text for p in places)), math.log(len(ids))])
    return [articles[i] for i in ids], np.asarray(rows, dtype=np.float32)
