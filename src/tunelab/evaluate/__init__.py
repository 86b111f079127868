"""The evaluate stage: task metrics with confidence intervals, and base-vs-tuned comparison."""
