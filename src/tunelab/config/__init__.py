"""Recipe models and loading."""

from tunelab.config.load import RecipeError, dump_recipe, load_recipe, validate_recipe
from tunelab.config.recipe import Recipe

__all__ = ["Recipe", "RecipeError", "dump_recipe", "load_recipe", "validate_recipe"]
