"""tunelab.audit.counterfactual: shipped word lists, whole-word case-preserving swaps, pronoun roles,
simultaneous two-way swaps, several groups, and malformed user lists."""

from __future__ import annotations

import fnmatch
from importlib import resources
from pathlib import Path

import pytest

from tunelab.audit.counterfactual import (
    CATEGORIES,
    Counterfactual,
    SwapList,
    WordListError,
    counterfactuals,
    load_lists,
)

LISTS = load_lists(CATEGORIES)
ROOT = Path(__file__).resolve().parents[3]

# (category, text, expected counterfactual texts in order; [] = none)
CASES = [
    # word boundaries
    ("gender", "the theory of the shell", []),
    ("gender", "he read the theme", ["she read the theme"]),
    ("gender", "the hero, Heather, and mankind", []),
    ("gender", "he, (she) and he.", ["she, (he) and she."]),
    ("gender", '"He" said: she!', ['"She" said: he!']),
    ("gender", "a five-year-old boy", ["a five-year-old girl"]),
    ("gender", "Zoë's brother", ["Zoë's sister"]),
    # apostrophes
    ("gender", "he's here and he'll stay", ["she's here and she'll stay"]),
    ("gender", "the king’s crown", ["the queen’s crown"]),
    # case
    ("gender", "He left", ["She left"]),
    ("gender", "HE LEFT", ["SHE LEFT"]),
    ("gender", "Mr. Smith", ["Mrs. Smith"]),
    ("names", "john called", ["mary called"]),
    ("names", "John's car", ["Mary's car"]),
    ("names", "JOHN", ["MARY"]),
    ("names", "Johnson and Maryland", []),
    # pronoun roles
    ("gender", "I saw her", ["I saw him"]),
    ("gender", "I saw her.", ["I saw him."]),
    ("gender", "her book", ["his book"]),
    ("gender", "Her book", ["His book"]),
    ("gender", "HER BOOK", ["HIS BOOK"]),
    ("gender", "the book is his", ["the book is hers"]),
    ("gender", "the book is his.", ["the book is hers."]),
    ("gender", "his book", ["her book"]),
    ("gender", "his own car", ["her own car"]),
    ("gender", "His is red", ["Hers is red"]),
    ("gender", "a friend of hers", ["a friend of his"]),
    ("gender", "I gave her the book", ["I gave him the book"]),
    ("gender", "I told him", ["I told her"]),
    ("gender", "She gave him her keys", ["He gave her his keys"]),
    ("gender", "his and hers", ["hers and his"]),
    # plurals and nouns
    ("gender", "the kings and their sons", ["the queens and their daughters"]),
    ("gender", "men and women", ["women and men"]),
    ("gender", "a man and a woman", ["a woman and a man"]),
    # multi-word terms, a/an
    ("age", "young people", ["old people"]),
    ("age", "two senior citizens", ["two teenagers"]),
    ("age", "a teenager", ["a senior citizen"]),
    ("age", "an old man", ["a young man"]),
    ("age", "an elderly woman", ["a teenage woman"]),
    ("age", "a five-year-old", []),
    ("religion", "a Muslim family", [f"a {g} family" for g in ("Christian", "Jewish", "Hindu", "Buddhist")]),
    # nothing listed
    ("gender", "", []),
    ("gender", "The weather is nice today.", []),
]


@pytest.mark.parametrize(("category", "text", "expected"), CASES, ids=[f"{c}:{t!r}" for c, t, _ in CASES])
def test_swaps(category, text, expected):
    assert [cf.text for cf in counterfactuals(text, LISTS[category])] == expected


def test_both_directions_in_one_pass_and_source_is_the_majority():
    [cf] = counterfactuals("She gave him her keys", LISTS["gender"])
    assert cf == Counterfactual("He gave her his keys", "female", "male", 3)
    [cf] = counterfactuals("he met her", LISTS["gender"])  # a tie: the group met first
    assert (cf.text, cf.source_group, cf.target_group, cf.changed) == ("she met him", "male", "female", 2)


def test_one_counterfactual_per_other_group():
    cfs = counterfactuals("an American film about Americans", LISTS["nationality"])
    assert [(cf.source_group, cf.target_group) for cf in cfs] == [
        ("american", g) for g in ("mexican", "indian", "nigerian", "filipino")
    ]
    assert cfs[0].text == "a Mexican film about Mexicans"
    assert cfs[1].text == "an Indian film about Indians"
    assert all(cf.changed == 2 for cf in cfs)


def test_mixed_groups_of_several_swap_in_pairs():
    cfs = counterfactuals("American and Mexican food", LISTS["nationality"])
    texts = {(cf.source_group, cf.target_group): cf.text for cf in cfs}
    assert len(cfs) == 7  # every pair holding american or mexican, once
    assert texts[("american", "mexican")] == "Mexican and American food"
    assert texts[("american", "indian")] == "Indian and Mexican food"
    assert texts[("mexican", "nigerian")] == "American and Nigerian food"


def test_shipped_lists():
    assert tuple(LISTS) == CATEGORIES
    assert LISTS["gender"].groups == ("male", "female")
    assert LISTS["names"].groups == ("male", "female")
    assert len(LISTS["gender"].pairs) >= 40 and len(LISTS["names"].pairs) >= 20
    assert len(LISTS["nationality"].groups) >= 3 and len(LISTS["religion"].groups) >= 3
    for swaps in LISTS.values():
        assert swaps.source, f"{swaps.category} names no source"
        assert all(len(row) == len(swaps.groups) for row in swaps.pairs)
    assert LISTS["gender"].pronouns and not LISTS["names"].pronouns


def test_word_lists_are_package_data():
    tomllib = pytest.importorskip("tomllib")
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    folder = resources.files("tunelab.audit") / "wordlists"
    for category in CATEGORIES:
        assert (folder / f"{category}.tsv").is_file()
        assert any(fnmatch.fnmatch(f"audit/wordlists/{category}.tsv", p) for p in patterns["tunelab"])


def _tsv(tmp_path: Path, body: str, name: str = "extra.tsv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_user_file_extends_a_shipped_list(tmp_path):
    path = _tsv(tmp_path, "# my additions\nnobleman\tnoblewoman\n")
    swaps = load_lists(["gender"], {"gender": path})["gender"]
    assert [cf.text for cf in counterfactuals("the nobleman and he", swaps)] == ["the noblewoman and she"]


def test_user_file_defines_a_new_category(tmp_path):
    path = _tsv(tmp_path, "# source: mine\n# groups: cat dog\ncat\tdog\ncats\tdogs\n")
    swaps = load_lists(["pets"], {"pets": str(path)})["pets"]
    assert (swaps.groups, swaps.source) == (("cat", "dog"), "mine")
    [cf] = counterfactuals("Cats chase dogs", swaps)
    assert (cf.text, cf.changed) == ("Dogs chase cats", 2)


def test_direct_swap_list_keeps_word_boundaries():
    swaps = SwapList("toy", ("a", "b"), (("man", "woman"), ("he", "she")))
    assert counterfactuals("mankind, the hero and Heather", swaps) == []
    assert [cf.text for cf in counterfactuals("The man (he) ran", swaps)] == ["The woman (she) ran"]


BAD = [
    ("one column", "# groups: a b\nfoo\n", 2, "one column"),
    ("spaces, not a tab", "# groups: a b\nfoo bar\n", 2, "one column"),
    ("duplicate in file", "# groups: a b\nfoo\tbar\n\nbaz\tfoo\n", 4, "listed twice"),
    ("duplicate in a line", "# groups: a b\nfoo\tFOO\n", 2, "listed twice"),
    ("empty term", "# groups: a b\nfoo\t\n", 2, "empty term in column 2"),
    ("three columns for two", "# groups: a b\nfoo\tbar\tbaz\n", 2, "3 columns, expected 2"),
    ("no groups", "# just a comment\nfoo\tbar\n", 2, "groups"),
    ("one group", "# groups: a\n", 1, "two or more"),
]


@pytest.mark.parametrize(("body", "line", "what"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_new_list_names_file_and_line(tmp_path, body, line, what):
    path = _tsv(tmp_path, body)
    with pytest.raises(WordListError, match=what) as err:
        load_lists(["new"], {"new": path})
    assert f"{path}:{line}" in str(err.value)


def test_duplicate_of_a_shipped_term(tmp_path):
    path = _tsv(tmp_path, "nobleman\tnoblewoman\nKing\tempress\n")
    with pytest.raises(WordListError, match=r"'King' is listed twice \(also at .*gender\.tsv:\d+\)") as err:
        load_lists(["gender"], {"gender": path})
    assert f"{path}:2" in str(err.value)


def test_extension_must_keep_the_groups(tmp_path):
    path = _tsv(tmp_path, "# groups: female male\nnobleman\tnoblewoman\n")
    with pytest.raises(WordListError, match=f"{path}:1: groups"):
        load_lists(["gender"], {"gender": path})


def test_pronouns_are_not_listed_in_gender_files(tmp_path):
    path = _tsv(tmp_path, "his\ther\n")
    with pytest.raises(WordListError, match=f"{path}:1: 'his' is a pronoun"):
        load_lists(["gender"], {"gender": path})


def test_unknown_category_and_missing_file(tmp_path):
    with pytest.raises(WordListError, match="no word list for category 'pets'"):
        load_lists(["pets"])
    missing = tmp_path / "nope.tsv"
    with pytest.raises(WordListError, match="cannot read"):
        load_lists(["gender"], {"gender": missing})


def test_only_asked_categories_are_loaded(tmp_path):
    assert list(load_lists(["age", "age"], {"gender": tmp_path / "unread.tsv"})) == ["age"]
