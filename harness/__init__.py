"""Reference harness for principle-following alignment (SAMI and baselines)."""

__version__ = "0.1.0"
