"""Training: configs, clip datasets, the loop, checkpoints/resume and DDP helpers."""
