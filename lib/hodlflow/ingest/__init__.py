"""Blocks → the chain tables (blocks, transactions, outputs, inputs, unspent)."""
