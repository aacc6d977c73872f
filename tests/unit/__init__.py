"""Unit tests. A package so that test_registry.py here and tests/corpora/test_registry.py can share a basename."""
