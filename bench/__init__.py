"""Benchmarks: `make bench` (python -m bench) measures the input pipeline, training memory, the
SavedModel in process, the service with and without micro-batching, and a naive service."""
