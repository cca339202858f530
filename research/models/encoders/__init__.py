"""Encoders, one file per kind; the file stem is the name users type (`encoder=rnn`)."""
from research.registry import Registry

ENCODERS = Registry("encoder", __name__)
