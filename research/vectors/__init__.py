"""Word vectors from co-occurrence counts: GloVe (research/glove.py is the entry point)."""
