"""Command-line entry points; ``scripts/*.py`` call their ``main``."""
