"""Robustness tooling: the service under schema fuzzing (``make fuzz``), sustained mixed load with
model swaps (``make soak``), the bad-image corpus and the dependency audit (``make audit``).

Everything here sends traffic to 127.0.0.1 only, in loops bounded in count and time.
"""
