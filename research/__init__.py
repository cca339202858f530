"""Sequence-to-sequence research framework."""
