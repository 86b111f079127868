"""Pretrained model resolution (aliases, local folders, hub ids) and adaptation (heads, adapters)."""
