"""Metric functions and confidence intervals (numpy / scikit-learn; no models)."""
