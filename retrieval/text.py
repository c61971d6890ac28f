"""Shared text helpers: the ranking tokenizer and date normalisation.

``tokenize`` is the one tokenizer of the retrieval package (BM25 over passages, the bundled
corpus search) and of claim/evidence matching in ``app``. It is deliberately simple and
dependency-free, so query and passage always agree:

1. Unicode word tokens (``[^\\W_]+``): letters and digits, split at punctuation,
   apostrophes and underscores; lower-cased.
2. Diacritics folded (``Élodie`` -> ``elodie``), so a query typed without accents matches.
3. English stopwords and one-character tokens dropped.
4. A light suffix stemmer (:func:`stem`): plurals, ``-ed``, ``-ing`` and a final ``-e``,
   so ``created``/``creates``/``creating`` meet at ``creat``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+")


def _codepoints(*ranges: tuple[int, int]) -> dict[int, None]:
    return {cp: None for lo, hi in ranges for cp in range(lo, hi + 1)}


# Characters a reader cannot see but a model can: soft hyphen, zero-width and bidi controls,
# word joiners and invisible operators, BOM, interlinear annotation marks and the Unicode tag
# block (used to smuggle hidden instructions). A ``str.translate`` table that deletes them.
INVISIBLE: dict[int, None] = _codepoints(
    (0x00AD, 0x00AD),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0xE0000, 0xE007F),
)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


STOPWORDS: frozenset[str] = _wordset(
    """
    a about above after again against all also am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn doing
    don down during each few for from further had hadn has hasn have haven having he her here
    hers herself him himself his how i if in into is isn it its itself just ll me more most
    mustn my myself no nor not now of off on once only or other ought our ours ourselves out
    over own re same shan she should shouldn so some such than that the their theirs them
    themselves then there these they this those through to too under until up us very was
    wasn we were weren what when where which while who whom why will with won would wouldn
    you your yours yourself yourselves
    """
)

# Suffix stripping leaves these doubled consonants alone ("falling" -> "fall", not "fal").
_KEEP_DOUBLE = frozenset("lsz")
_VOWELS = frozenset("aeiouy")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Strip common English inflections from a lower-case word (a light, Porter-like stemmer).

    Words of three letters or fewer and words with digits are returned unchanged.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    w = word
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "shes", "ches", "xes", "zzes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if w.endswith("ing") and len(w) >= 6 and _VOWELS & set(w[:-3]):
        w = _undouble(w[:-3])
    elif w.endswith("ed") and not w.endswith("eed") and len(w) >= 5 and _VOWELS & set(w[:-2]):
        w = _undouble(w[:-2])
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def _undouble(w: str) -> str:
    if len(w) >= 3 and w[-1] == w[-2] and w[-1] not in _KEEP_DOUBLE and w[-1] not in _VOWELS:
        return w[:-1]
    return w


def fold(text: str) -> str:
    """Lower-case ``text`` and strip diacritics (NFKD, combining marks removed)."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokenize(text: str) -> list[str]:
    """Ranking tokens of ``text``: folded, stopword-free, stemmed word tokens (see module doc)."""
    return [stem(tok) for tok in _WORD.findall(fold(text)) if len(tok) > 1 and tok not in STOPWORDS]


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SLASH_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_WORDY_DATE = re.compile(
    r"(?:(\d{1,2})\s+([A-Za-z]{3,9})\.?,?\s+(\d{4}))|(?:([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4}))"
)


def normalize_date(value: str | None) -> str | None:
    """Return ``value`` as ``YYYY-MM-DD`` when it holds a recognisable date, else ``None``.

    Accepts ISO 8601 (with or without time and zone), ``YYYY/MM/DD``, ``YYYYMMDD`` and
    ``14 January 2011`` / ``Jan 14, 2011``. Years outside 1000-2999 are rejected.
    """
    if not value:
        return None
    value = value.strip()[:64]
    for pattern in (_ISO_DATE, _SLASH_DATE):
        m = pattern.search(value)
        if m:
            return _valid(int(m[1]), int(m[2]), int(m[3]))
    m = _WORDY_DATE.search(value)
    if m:
        if m[1]:
            day, month_name, year = m[1], m[2], m[3]
        else:
            month_name, day, year = m[4], m[5], m[6]
        month = _MONTHS.get(month_name[:3].lower())
        if month is not None:
            return _valid(int(year), month, int(day))
    m = _COMPACT_DATE.fullmatch(value)
    if m:
        return _valid(int(m[1]), int(m[2]), int(m[3]))
    return None


def _valid(year: int, month: int, day: int) -> str | None:
    if 1000 <= year <= 2999 and 1 <= month <= 12 and 1 <= day <= 31:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return None
