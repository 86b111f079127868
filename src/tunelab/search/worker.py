"""A helper started by ``tunelab tune --workers N``: ``python -m tunelab.search.worker RECIPE INDEX``."""

from __future__ import annotations

import sys

from tunelab.config import load_recipe
from tunelab.search.tune import join


def main(argv: list[str]) -> int:
    recipe_path, index = argv
    join(load_recipe(recipe_path), int(index))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
