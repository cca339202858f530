"""Decoders, one file per kind; the file stem is the name users type (`decoder=rnn`)."""
from research.registry import Registry

DECODERS = Registry("decoder", __name__)
