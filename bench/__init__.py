"""Benchmarks: speed, memory and accuracy. Run them all with ``make bench`` (``python -m bench``)."""
