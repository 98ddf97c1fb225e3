"""Errors raised while decoding and checking blocks.

Every error is a ``ValueError`` (through :class:`ChainError`) so callers that only care about
"bad input" can catch one type. Messages name the file (or other context) and the byte offset,
so a bad block in a 128 MB blk file can be found with a hex editor.
"""

from __future__ import annotations


class ChainError(ValueError):
    """Base class: the bytes do not form a valid block, transaction or script."""


class ParseError(ChainError):
    """The bytes cannot be decoded: truncated data, trailing bytes, a wrong magic, ...

    ``offset`` is the absolute byte offset of the problem (``None`` when unknown) and
    ``where`` the file name or other context (``None`` when the caller gave none).

    >>> str(ParseError("trailing bytes after block", offset=285, where="blk00000.dat"))
    'blk00000.dat: trailing bytes after block (at byte offset 285)'
    """

    def __init__(self, what: str, *, offset: int | None = None, where: str | None = None):
        self.what = what
        self.offset = offset
        self.where = where
        text = what if offset is None else f"{what} (at byte offset {offset})"
        super().__init__(text if where is None else f"{where}: {text}")


class MerkleError(ChainError):
    """The merkle root computed from a block's transactions differs from its header."""

    def __init__(
        self,
        block_hash: str,
        expected: str,
        computed: str,
        *,
        where: str | None = None,
        offset: int | None = None,
    ):
        self.block_hash = block_hash
        self.expected = expected
        self.computed = computed
        self.where = where
        self.offset = offset
        at = "" if offset is None else f" at byte offset {offset}"
        prefix = "" if where is None else f"{where}: "
        super().__init__(
            f"{prefix}merkle root mismatch in block {block_hash}{at}: "
            f"header says {expected}, transactions give {computed}"
        )


class PowError(ChainError):
    """A header's hash does not meet its target, or its ``bits`` encode no valid target."""
