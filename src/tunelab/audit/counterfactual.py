"""Demographic term swaps for counterfactual fairness: each text beside the same text with another
group's terms (``he`` -> ``she``, ``John`` -> ``Mary``, ``American`` -> ``Mexican``).

Word lists. One TSV per category in :data:`CATEGORIES` ships in ``tunelab/audit/wordlists/``; a user
file (``audit.word_lists``) extends a shipped list or, under a new category name, defines one:

- blank lines and lines starting with ``#`` are comments;
- ``# groups: male female`` names the columns (whitespace-separated, at least two). A shipped or new
  list needs it before its first data line; a file extending a shipped list may leave it out, and
  if it gives one it must match. ``# source: ...`` lines say where the list comes from
  (:attr:`SwapList.source`);
- every other line holds one term per group, separated by TABs, in the groups' order; the terms of a
  line are counterparts (``he<TAB>she``, ``American<TAB>Mexican<TAB>Indian``). A term may be several
  words (``senior citizens``). It is matched case-insensitively on whole words: a hyphen between
  letters joins words (``five-year-old`` holds no ``old``), an apostrophe does not (``he's``).
  A term may appear only once per category, shipped and user file together.

A malformed line (one column, the wrong number of columns, an empty term, a term listed twice)
raises :class:`WordListError` with ``file:line``.

Swaps. For each pair of groups of which the text holds a term, one counterfactual: the terms of both
groups are exchanged in one pass (``he`` <-> ``she`` at once, not one after the other). A text with
only one group's terms thus yields one counterfactual per other group; its ``source_group`` is the
group the text holds more terms of (on a tie, the one met first). Case carries over (``He`` -> ``She``,
``HE`` -> ``SHE``, ``john`` -> ``mary``), and an ``a``/``an`` right before a swapped term follows it
(``an American`` -> ``a Mexican``).

Pronouns (the ``gender`` category). ``her`` is object (him) or possessive determiner (his); ``his``
is determiner (her) or possessive pronoun (hers). They are not in the TSV but in
:data:`PRONOUN_ROLES`; an ambiguous form is the determiner when the next word is a content word
(not in :data:`FUNCTION_WORDS`), and the other role before a function word, punctuation or the end
(``her book`` -> ``his book``, ``I saw her.`` -> ``I saw him.``, ``is his.`` -> ``is hers.``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

CATEGORIES = ("gender", "names", "nationality", "religion", "age")

# role -> (male form, female form): the first column of the gender list takes the male forms.
PRONOUN_ROLES: dict[str, tuple[str, str]] = {
    "object": ("him", "her"),  # I saw him / her
    "determiner": ("his", "her"),  # his / her book
    "possessive": ("his", "hers"),  # the book is his / hers
}
_PRONOUN_FORMS = frozenset(f for forms in PRONOUN_ROLES.values() for f in forms)

# Words after which an ambiguous pronoun is not a determiner: "gave her the", "his is", "saw her again".
_FUNCTION_TEXT = """a an the this that these those some any no every each all both either neither
    my your his her hers its our their me him us them you i we they he she it who whom whose which what
    to of in on at by for from with without about into onto over under up down off out away back
    through across after before since until than as like and or but nor so yet if because while
    when where why how whether not never also too very again now then there here today tonight
    tomorrow yesterday once well just still even only is am are was were be been being has have
    had do does did will would shall should can could may might must"""
FUNCTION_WORDS = frozenset(_FUNCTION_TEXT.split())

_GROUPS_LINE = re.compile(r"#\s*groups\s*:(.*)", re.IGNORECASE)
_SOURCE_LINE = re.compile(r"#\s*source\s*:(.*)", re.IGNORECASE)
_NEXT_WORD = re.compile(r"\s*(\w+(?:['’-]\w+)*)")
_ARTICLE = re.compile(r"(?<![\w'’-])(an?)\s+$", re.IGNORECASE)


class WordListError(ValueError):
    """A word list that cannot be used; the message names the file, the line and what is wrong."""


@dataclass(frozen=True)
class Counterfactual:
    """``text`` with one pair of groups' terms exchanged; ``changed`` words were swapped (always > 0)."""

    text: str
    source_group: str
    target_group: str
    changed: int


def _key(term: str) -> str:
    return " ".join(term.lower().split())


@dataclass(frozen=True)
class SwapList:
    """One category's counterparts: ``pairs[i][j]`` is group ``groups[j]``'s term of row ``i``.

    ``pronouns`` adds :data:`PRONOUN_ROLES` (two groups only, the first taking he/him/his).
    """

    category: str
    groups: tuple[str, ...]
    pairs: tuple[tuple[str, ...], ...]
    pronouns: bool = False
    source: str = ""
    _index: dict[str, tuple[int, int]] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.groups) < 2 or len(set(self.groups)) != len(self.groups):
            raise ValueError(f"{self.category}: needs two or more distinct groups, got {self.groups}")
        if self.pronouns and len(self.groups) != 2:
            raise ValueError(f"{self.category}: pronoun roles need exactly two groups")
        index: dict[str, tuple[int, int]] = {}  # term -> (row, column); row -1: a pronoun form
        forms = [(-1, f) for f in PRONOUN_ROLES.values()] if self.pronouns else []
        for r, row in [*enumerate(self.pairs), *forms]:
            if len(row) != len(self.groups):
                raise ValueError(f"{self.category}: {row} has {len(row)} terms for {len(self.groups)} groups")
            for c, term in enumerate(row):
                if index.setdefault(_key(term), (r, c)) != (r, c) and r >= 0:
                    raise ValueError(f"{self.category}: {term!r} is listed twice")
        words = sorted(index, key=len, reverse=True)  # longest first: "senior citizens" before "senior"
        alts = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words) or "(?!)"
        pattern = re.compile(rf"(?<!\w)(?<!\w-)(?:{alts})(?!\w)(?!-\w)", re.IGNORECASE)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_pattern", pattern)


def _parse(
    text: str, origin: str, groups: tuple[str, ...] | None
) -> tuple[tuple[str, ...] | None, list[str], list[tuple[tuple[str, ...], int]]]:
    """(groups, source lines, [(terms, line number)]) of one TSV; ``groups``: those it must match."""
    sources: list[str] = []
    rows: list[tuple[tuple[str, ...], int]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if m := _GROUPS_LINE.match(stripped):
                named = tuple(m.group(1).split())
                if len(named) < 2 or len(set(named)) != len(named):
                    raise WordListError(f"{origin}:{n}: a groups line names two or more distinct groups")
                if groups is not None and named != groups:
                    raise WordListError(f"{origin}:{n}: groups {named} do not match {groups}")
                groups = named
            elif m := _SOURCE_LINE.match(stripped):
                sources.append(m.group(1).strip())
            continue
        terms = tuple(cell.strip() for cell in raw.split("\t"))
        if len(terms) == 1:
            raise WordListError(f"{origin}:{n}: one column ({stripped!r}): separate the terms with a TAB")
        if groups is None:
            raise WordListError(f"{origin}:{n}: a data line before any '# groups: ...' line")
        if len(terms) != len(groups):
            raise WordListError(
                f"{origin}:{n}: {len(terms)} columns, expected {len(groups)} ({' '.join(groups)})"
            )
        for c, term in enumerate(terms, 1):
            if not re.search(r"\w", term):
                raise WordListError(f"{origin}:{n}: empty term in column {c}")
        rows.append((terms, n))
    return groups, sources, rows


def _read(category: str, user: str | Path | None) -> list[tuple[str, str]]:
    """(origin, text) of the shipped list, then of the user's file."""
    files = []
    if category in CATEGORIES:
        res = resources.files("tunelab.audit") / "wordlists" / f"{category}.tsv"
        files.append((str(res), res.read_text(encoding="utf-8")))
    if user is not None:
        try:
            files.append((str(user), Path(user).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as e:
            raise WordListError(f"{user}: cannot read the {category} word list: {e}") from e
    return files


def load_lists(
    categories: Sequence[str], extra: Mapping[str, str | Path] | None = None
) -> dict[str, SwapList]:
    """The swap list of each category, in order; ``extra``: category -> a TSV extending (or defining) it.

    Files in ``extra`` for categories not asked for are not read.
    """
    extra = extra or {}
    out: dict[str, SwapList] = {}
    for category in dict.fromkeys(categories):
        if category not in CATEGORIES and category not in extra:
            raise WordListError(
                f"no word list for category {category!r}: shipped are {', '.join(CATEGORIES)}; "
                "name a TSV for a new one"
            )
        groups: tuple[str, ...] | None = None
        sources: list[str] = []
        pairs: list[tuple[str, ...]] = []
        seen: dict[str, str] = {}
        pronouns = category == "gender"
        for origin, text in _read(category, extra.get(category)):
            groups, src, rows = _parse(text, origin, groups)
            sources += src
            for terms, n in rows:
                for term in terms:
                    k = _key(term)
                    if pronouns and k in _PRONOUN_FORMS:
                        raise WordListError(
                            f"{origin}:{n}: {term!r} is a pronoun resolved by role (PRONOUN_ROLES); drop it"
                        )
                    if k in seen:
                        raise WordListError(f"{origin}:{n}: {term!r} is listed twice (also at {seen[k]})")
                    seen[k] = f"{origin}:{n}"
                pairs.append(terms)
            if groups is None:
                raise WordListError(f"{origin}: no '# groups: ...' line")
        assert groups is not None
        out[category] = SwapList(category, groups, tuple(pairs), pronouns, " ".join(sources))
    return out


def _match_case(word: str, listed: str, target: str) -> str:
    """``target`` in the case ``word`` (an occurrence of ``listed``) is written in."""
    if word == listed:
        return target
    if word.isupper() and sum(ch.isalpha() for ch in word) > 1:
        return target.upper()
    if word.islower():
        return target.lower()
    if word.istitle():
        return " ".join(w[:1].upper() + w[1:] for w in target.split(" "))
    return target[:1].upper() + target[1:] if word[:1].isupper() else target


def _role(form: str, col: int, text: str, end: int) -> str:
    """The role of pronoun ``form``: the determiner before a content word, else the other one."""
    roles = [r for r, forms in PRONOUN_ROLES.items() if forms[col] == form]
    if len(roles) == 1:
        return roles[0]
    nxt = _NEXT_WORD.match(text, end)
    if nxt is not None and nxt.group(1).lower() not in FUNCTION_WORDS:
        return "determiner"
    return next(r for r in roles if r != "determiner")


def _article(word: str) -> str:
    """``a`` or ``an`` before ``word``, by its spelling (with a few common exceptions)."""
    w = word.lower()
    if w.startswith(("hour", "honest", "honor", "heir")):
        return "an"
    return "an" if w[:1] in "aeiou" and not w.startswith(("eu", "uni", "use", "one")) else "a"


def _swap(
    text: str, hits: list[tuple[re.Match[str], int, int]], swaps: SwapList, a: int, b: int
) -> tuple[str, int]:
    """``text`` with groups ``a`` and ``b`` exchanged, and the number of words swapped."""
    parts: list[str] = []
    pos = changed = 0
    for m, row, col in hits:
        if col not in (a, b):
            continue
        other = b if col == a else a
        word = m.group()
        if row >= 0:
            listed, target = swaps.pairs[row][col], swaps.pairs[row][other]
        else:
            forms = PRONOUN_ROLES[_role(word.lower(), col, text, m.end())]
            listed, target = forms[col], forms[other]
        new = _match_case(word, listed, target)
        art = _ARTICLE.search(text, pos, m.start())
        was, becomes = _article(word), _article(new)
        if art and was != becomes and art.group(1).lower() == was:  # only a/an that fit the old word
            parts += [text[pos : art.start(1)], _match_case(art.group(1), "", becomes)]
            pos = art.end(1)
        parts += [text[pos : m.start()], new]
        pos, changed = m.end(), changed + 1
    parts.append(text[pos:])
    return "".join(parts), changed


def counterfactuals(text: str, swaps: SwapList) -> list[Counterfactual]:
    """One counterfactual per pair of groups of which ``text`` holds a term; none if it holds none."""
    hits = []
    for m in swaps._pattern.finditer(text):
        found = swaps._index.get(_key(m.group()))
        if found is not None:  # None only for case foldings re and str.lower disagree on
            hits.append((m, *found))
    counts = Counter(col for _, _, col in hits)
    first: dict[int, int] = {}
    for i, (_, _, col) in enumerate(hits):
        first.setdefault(col, i)
    out: list[Counterfactual] = []
    done: set[frozenset[int]] = set()
    for s in sorted(counts):
        for t in range(len(swaps.groups)):
            if t == s or frozenset((s, t)) in done:
                continue
            done.add(frozenset((s, t)))
            src, dst = s, t
            if (counts[t], -first.get(t, len(hits))) > (counts[s], -first[s]):
                src, dst = t, s
            new, changed = _swap(text, hits, swaps, s, t)
            if changed:
                out.append(Counterfactual(new, swaps.groups[src], swaps.groups[dst], changed))
    return out
