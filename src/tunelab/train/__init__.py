"""The train stage: model adaptation, the training loop, checkpoints and resume."""
