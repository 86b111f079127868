"""tunelab: from a raw text dataset to a fine-tuned, evaluated language model, driven by one recipe."""

__version__ = "0.1.0"
