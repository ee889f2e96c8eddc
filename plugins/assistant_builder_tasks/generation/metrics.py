"""The ``generation`` task's scores: validation loss, and generated answers against the references.

``loss_metrics``: the token-weighted mean negative log-likelihood of the reference responses
(``loss``), ``perplexity`` = exp(loss), and ``neg_loss`` = -loss (higher is better: what early
stopping maximises). ``answer_metrics``: ``exact_match`` and ``token_f1`` as SQuAD scores them
(``toolkit/answer_metrics.py``) and ``rouge_l`` (the F-measure of ROUGE-L, from Google's
``rouge-score`` package), each a mean over answers, fractions in [0, 1] like the ``qa`` task's (and
every other metric of the engine). ``rouge-score``'s tokenizer keeps only ``a-z`` and ``0-9``
after lower-casing, so ROUGE-L ignores other letters (accents, non-Latin scripts: an answer in
Chinese scores 0); exact match and token F1 do not. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from assistant_builder.toolkit.answer_metrics import exact_match_score, f1_score

METRIC_NAMES = ("neg_loss", "loss", "perplexity", "exact_match", "token_f1", "rouge_l")
#: perplexity is reported up to this (exp of a loss above ~700 overflows)
MAX_PERPLEXITY = 1e9


def loss_metrics(nll_sums: Sequence[float], token_counts: Sequence[float]) -> dict[str, float]:
    """``loss`` (the summed NLL over the summed token counts: a token-weighted mean), ``perplexity``
    (exp(loss), at most ``MAX_PERPLEXITY``) and ``neg_loss``; ``ValueError`` without any target token
    or when the two sequences differ in length."""
    if len(nll_sums) != len(token_counts):
        raise ValueError(f"expected one token count per NLL sum, got {len(nll_sums)} sums and {len(token_counts)} counts")
    tokens = float(sum(token_counts))
    if tokens <= 0:
        raise ValueError("no target tokens to score; expected at least one example with a response")
    loss = float(sum(nll_sums)) / tokens
    return {"neg_loss": -loss, "loss": loss, "perplexity": min(math.exp(min(loss, 700.0)), MAX_PERPLEXITY)}


def per_example_scores(completions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """``exact_match``, ``token_f1`` and ``rouge_l`` of each completion against its reference (in order);
    ``ValueError`` when the two sequences differ in length."""
    if len(completions) != len(references):
        raise ValueError(f"expected one reference per completion, got {len(completions)} completions and {len(references)} references")
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return [{"exact_match": exact_match_score(c, r), "token_f1": f1_score(c, r), "rouge_l": scorer.score(r, c)["rougeL"].fmeasure}
            for c, r in zip(completions, references)]


def answer_metrics(completions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ``exact_match``, ``token_f1`` and ``rouge_l`` over the answers (empty input: empty dict)."""
    scores = per_example_scores(completions, references)
    if not scores:
        return {}
    return {name: sum(s[name] for s in scores) / len(scores) for name in ("exact_match", "token_f1", "rouge_l")}
