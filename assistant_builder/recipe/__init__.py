"""Recipes: TOML files that describe a run, validated with pydantic (torch-free)."""

from __future__ import annotations

from assistant_builder.recipe.loader import LoadedRecipe, load_recipe, validate_components
from assistant_builder.recipe.schema import Recipe

__all__ = ["LoadedRecipe", "Recipe", "load_recipe", "validate_components"]
