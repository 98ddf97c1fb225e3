"""Synthetic chains with known contents: the builder, its keys, and blk-file writers."""
