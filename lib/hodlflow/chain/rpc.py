"""A small JSON-RPC client for Bitcoin Core (and btcd, which speaks the same calls).

Credentials come from the caller: a cookie file (``<datadir>/.cookie``, read on every
connection because the node writes a new one each start) or a user and password. They are
never logged and never put in an error message or a table: errors name the URL (without any
user info) and the call.

Transient failures (connection refused or reset, timeouts, HTTP 502/503/504, Bitcoin Core's
"still warming up" -28) are retried ``retries`` times with exponential backoff; the rest fail at
once with a clear error.

>>> client = RpcClient(RpcConfig("http://127.0.0.1:8332", cookie_file="~/.bitcoin/.cookie"))
>>> client.call("getblockcount")  # doctest: +SKIP
850000
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Bitcoin Core's RPC error codes worth a name.
RPC_IN_WARMUP = -28
RPC_MISC_ERROR = -1
RPC_INVALID_PARAMETER = -8
RPC_INVALID_ADDRESS_OR_KEY = -5

# getblockchaininfo "chain" of Bitcoin Core and of btcd → hodlflow's network names.
CHAIN_NAMES = {
    "main": "main",
    "mainnet": "main",
    "test": "testnet",
    "testnet3": "testnet",
    "testnet4": "testnet4",
    "signet": "signet",
    "regtest": "regtest",
}


class RpcError(RuntimeError):
    """A node call failed; the message names the URL and the call, never a credential."""


class RpcConnectionError(RpcError):
    """No node answered at the URL (refused, unreachable, timed out), after the retries."""


class RpcAuthError(RpcError):
    """The node refused the credentials (HTTP 401/403)."""


class RpcCallError(RpcError):
    """The node answered a call with an error object; ``code`` is its RPC error code."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class RpcBlockMissingError(RpcError):
    """The node does not have a block's data (a pruned node, or a block not downloaded yet)."""


class RpcChainError(RpcError):
    """The node follows another network than the one configured."""


@dataclass(frozen=True)
class RpcConfig:
    """Where the node is and how to log in. ``password`` never shows in ``repr``."""

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    cookie_file: str | None = None
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 0.5

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"RPC URL must look like http://host:port, got {_safe_url(self.url)!r}"
            )
        if parts.username or parts.password:
            raise ValueError(
                "RPC URL must not carry credentials: use a cookie file or a user with a password"
            )
        if self.cookie_file and self.user:
            raise ValueError("give either an RPC cookie file or an RPC user, not both")
        if self.user and self.password is None:
            raise ValueError(f"RPC user {self.user!r} given without a password")


def _safe_url(url: str) -> str:
    """The URL without user info (what errors may show)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    netloc = (
        host + (f":{parts.port}" if parts.port else "") if "@" in parts.netloc else parts.netloc
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _is_transient(exc: BaseException) -> bool:
    return isinstance(
        exc,
        (ConnectionError, socket.timeout, TimeoutError, http.client.RemoteDisconnected,
         http.client.IncompleteRead, http.client.BadStatusLine, OSError),
    )  # fmt: skip


class RpcClient:
    """One HTTP connection to one node, reused across calls (a Spark task opens its own)."""

    def __init__(self, config: RpcConfig) -> None:
        self.config = config
        self.url = _safe_url(config.url)
        parts = urllib.parse.urlsplit(config.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/"
        self._conn: http.client.HTTPConnection | None = None
        self._next_id = 0

    # -- plumbing ---------------------------------------------------------------------------

    def _auth_header(self) -> str:
        cfg = self.config
        if cfg.cookie_file:
            path = os.path.expanduser(cfg.cookie_file)
            try:
                with open(path, encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise RpcAuthError(
                    f"cannot read the RPC cookie file {path}: {exc.strerror or exc} "
                    "(is the node running, and is this its data directory?)"
                ) from None
            if ":" not in token:
                raise RpcAuthError(f"the RPC cookie file {path} does not hold user:password")
        elif cfg.user:
            token = f"{cfg.user}:{cfg.password}"
        else:
            raise RpcAuthError(f"no RPC credentials for {self.url}: give a cookie file or a user")
        return "Basic " + base64.b64encode(token.encode()).decode()

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.config.timeout_s)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _post(self, payload: Any, what: str) -> Any:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Authorization": self._auth_header()}
        last: BaseException | None = None
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                conn = self._connection()
                conn.request("POST", self._path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
            except Exception as exc:  # noqa: BLE001 — sorted below
                self.close()
                if not _is_transient(exc):
                    raise
                last = exc
                continue
            if resp.status in (401, 403):
                self.close()
                raise RpcAuthError(
                    f"the node at {self.url} refused the RPC credentials (HTTP {resp.status}): "
                    "wrong user or password, or a stale cookie file"
                )
            if resp.status in (502, 503, 504):  # work queue full, proxy trouble: try again
                last = RpcError(f"HTTP {resp.status}")
                self.close()
                continue
            try:
                answer = json.loads(data)
            except ValueError:
                raise RpcError(
                    f"the node at {self.url} answered {what} with HTTP {resp.status} and no "
                    f"JSON: {data[:200]!r}"
                ) from None
            if isinstance(answer, dict) and _code(answer) == RPC_IN_WARMUP:
                last = RpcCallError(str(answer["error"].get("message")), RPC_IN_WARMUP)
                continue
            return answer
        raise RpcConnectionError(
            f"no answer from the node at {self.url} to {what} after "
            f"{self.config.retries + 1} attempt(s): {_describe(last)}"
        )

    # -- calls ------------------------------------------------------------------------------

    def call(self, method: str, *params: Any) -> Any:
        """One call; returns its ``result`` or raises an :class:`RpcError`."""
        self._next_id += 1
        answer = self._post(
            {"jsonrpc": "1.0", "id": self._next_id, "method": method, "params": list(params)},
            method,
        )
        return self._result(answer, method, params)

    def batch(self, method: str, params_list: Sequence[Sequence[Any]]) -> list[Any]:
        """The same method with many parameter lists in one HTTP request; results in order."""
        if not params_list:
            return []
        base = self._next_id + 1
        self._next_id += len(params_list)
        payload = [
            {"jsonrpc": "1.0", "id": base + i, "method": method, "params": list(p)}
            for i, p in enumerate(params_list)
        ]
        answer = self._post(payload, f"{method} (batch of {len(params_list)})")
        if not isinstance(answer, list):
            # Some servers answer a whole batch with one error object.
            return [self._result(answer, method, params_list[0])]
        by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}
        out = []
        for i, params in enumerate(params_list):
            a = by_id.get(base + i)
            if a is None:
                raise RpcError(f"the node at {self.url} left {method} {list(params)} unanswered")
            out.append(self._result(a, method, params))
        return out

    def _result(self, answer: Any, method: str, params: Sequence[Any]) -> Any:
        err = answer.get("error") if isinstance(answer, dict) else None
        if err:
            code = err.get("code") if isinstance(err, dict) else None
            msg = err.get("message") if isinstance(err, dict) else str(err)
            shown = " ".join(str(p) for p in params)
            if method == "getblock" and (
                "pruned" in str(msg).lower() or "not available" in str(msg).lower()
            ):
                raise RpcBlockMissingError(
                    f"the node at {self.url} does not have block {shown}: {msg} (a pruned "
                    "node keeps only recent blocks; ingest older heights from a node that "
                    "has them or from a blocks directory)"
                )
            raise RpcCallError(
                f"the node at {self.url} answered {method} {shown}: {msg} (code {code})", code
            )
        if not isinstance(answer, dict) or "result" not in answer:
            raise RpcError(f"the node at {self.url} answered {method} without a result")
        return answer["result"]

    # -- the calls ingest uses --------------------------------------------------------------

    def check_network(self, network: str, genesis_hash: str) -> dict:
        """``getblockchaininfo``, checked against the configured network (name and genesis).

        Raises :class:`RpcChainError` naming both networks when they differ.
        """
        info = self.call("getblockchaininfo")
        chain = str(info.get("chain"))
        mapped = CHAIN_NAMES.get(chain, chain)
        if mapped != network:
            raise RpcChainError(
                f"the node at {self.url} follows the {chain!r} chain, but the network setting "
                f"is {network!r}: point --rpc at a {network} node or set network={mapped}"
            )
        genesis = self.call("getblockhash", 0)
        if genesis != genesis_hash:
            raise RpcChainError(
                f"the node at {self.url} has genesis block {genesis}, not {network}'s "
                f"{genesis_hash}"
            )
        return info

    def block_hashes(self, heights: Sequence[int]) -> list[str]:
        return self.batch("getblockhash", [(h,) for h in heights])

    def raw_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        """The serialized blocks (``getblock HASH 0``), in order."""
        return [bytes.fromhex(h) for h in self.batch("getblock", [(x, 0) for x in hashes])]

    def raw_headers(self, hashes: Sequence[str]) -> list[bytes]:
        """The 80-byte headers (``getblockheader HASH false``), in order."""
        return [
            bytes.fromhex(h) for h in self.batch("getblockheader", [(x, False) for x in hashes])
        ]


def _code(answer: dict) -> int | None:
    err = answer.get("error")
    return err.get("code") if isinstance(err, dict) else None


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no error recorded"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the node running and its RPC server on?)"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"
