"""Tools around the library: the speed benchmarks and the import of official PyTorch weights.

Layer: above ``training/`` and ``serving/``; it may import every layer below it, and only
``cli/`` imports it. Nothing in the library depends on these modules.
"""
