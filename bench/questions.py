"""A deterministic, stratified sample of the dev questions.

Three strata: HotpotQA, answerable SQuAD and unanswerable SQuAD, each sampled in proportion to
its share of the pool (seeded shuffle, largest remainders), then interleaved so that every
prefix of the sample is itself about stratified - the latency runs use a prefix.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from tests.fakes.simweb import Question

STRATA = ("hotpotqa", "squad", "squad-unanswerable")


def stratum(question: Question) -> str:
    """``hotpotqa``, ``squad`` (answerable) or ``squad-unanswerable``."""
    if question["source"] == "hotpotqa":
        return "hotpotqa"
    return "squad" if question["answerable"] else "squad-unanswerable"


def sample(questions: Sequence[Question], n: int, *, seed: int = 0) -> list[Question]:
    """``n`` dev questions (all of them if ``n`` is larger), stratified and interleaved."""
    pool = [q for q in questions if q.get("side", "dev") == "dev"]
    groups: dict[str, list[Question]] = {name: [] for name in STRATA}
    for question in pool:
        groups.setdefault(stratum(question), []).append(question)
    rng = random.Random(seed)  # not for security
    for members in groups.values():
        rng.shuffle(members)
    n = min(n, len(pool))
    exact = {name: n * len(members) / len(pool) for name, members in groups.items()}
    counts = {name: int(share) for name, share in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - counts[name], reverse=True)
    for name in by_remainder[: n - sum(counts.values())]:
        counts[name] += 1
    # Interleave by relative position within each stratum: any prefix stays proportional.
    keyed = [
        ((i + 0.5) / counts[name], order, q)
        for order, (name, members) in enumerate(groups.items())
        for i, q in enumerate(members[: counts[name]])
    ]
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [q for _, _, q in keyed]
