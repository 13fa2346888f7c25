"""Labelled documents generated per test session (the fixtures of tests/documents_support.py)."""

from tests.documents_support import dev_corpus, docgen, heldout_corpus, score  # noqa: F401
