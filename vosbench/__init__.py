"""vosbench: semi-supervised video object segmentation (STM, SCM, D-STM) from data to submission."""

__version__ = "0.1.0"
