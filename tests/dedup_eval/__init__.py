"""Labelled dedup evaluation set, generated deterministically at run time (see corpus.py)."""
