"""A real btcd node for the tests: regtest, loopback, a free port, a temporary data directory.

btcd comes from ``make setup`` (``go install github.com/btcsuite/btcd@<pinned>`` into
``.cache/bin``). Its generated blocks pay an anyone-can-spend P2SH address (redeem script
``OP_TRUE``), so the tests can spend coinbases with real, consensus-valid transactions the node
accepts without any signing code: the scriptSig only pushes the redeem script.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from hodlflow.chain.rpc import RpcClient, RpcConfig
from hodlflow.config import PROJECT_ROOT
from hodlflow.sim.builder import p2sh, push_data
from hodlflow.sim.keys import hash160
from tests.support.ports import free_port

BTCD = PROJECT_ROOT / ".cache" / "bin" / "btcd"
OP_TRUE = b"\x51"
ANYONE_P2SH = p2sh(hash160(OP_TRUE))  # scriptPubKey of the mining address
ANYONE_SCRIPT_SIG = push_data(OP_TRUE)  # spends it: push the redeem script, nothing else
RPC_USER = "hodlflow-test"
RPC_PASS = "s3cret-Pa55word-xyz"


@dataclass
class Btcd:
    datadir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    mining_address: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, **kw) -> RpcConfig:
        kw.setdefault("user", RPC_USER)
        kw.setdefault("password", RPC_PASS)
        return RpcConfig(self.url, **kw)

    def client(self) -> RpcClient:
        return RpcClient(self.config(retries=0))

    def start(self) -> None:
        if not BTCD.exists():
            raise RuntimeError(f"{BTCD} is missing: run `make setup` (it installs btcd)")
        log = open(self.datadir / "btcd.out", "ab")  # noqa: SIM115 — lives as long as the node
        self.proc = subprocess.Popen(
            [str(BTCD), "--regtest", f"--datadir={self.datadir / 'data'}",
             f"--logdir={self.datadir / 'logs'}", f"--configfile={self.datadir / 'btcd.conf'}",
             f"--rpcuser={RPC_USER}", f"--rpcpass={RPC_PASS}", "--notls",
             f"--rpclisten=127.0.0.1:{self.port}", "--nolisten", "--nodnsseed",
             f"--miningaddr={self.mining_address}", "--debuglevel=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.time() + 30
        while True:
            try:
                self.client().call("getblockcount")
                return
            except Exception:
                if self.proc.poll() is not None or time.time() > deadline:
                    out = (self.datadir / "btcd.out").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"btcd did not start: {out}") from None
                time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: the node dies at once, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    # -- node calls the tests use -----------------------------------------------------------

    def generate(self, n: int) -> list[str]:
        with self.client() as c:
            return c.call("generate", n)

    def call(self, method: str, *params):
        with self.client() as c:
            return c.call(method, *params)

    def best_chain(self) -> list[str]:
        with self.client() as c:
            tip = c.call("getblockcount")
            return c.block_hashes(range(tip + 1))


def start_btcd(tmp: Path) -> Btcd:
    node = Btcd(tmp, mining_address=_anyone_address())
    (tmp / "btcd.conf").write_text("")
    node.start()
    return node


def _anyone_address() -> str:
    from hodlflow.chain.network import REGTEST
    from hodlflow.chain.script import classify_script

    _, address = classify_script(ANYONE_P2SH, REGTEST)
    return address


def cleanup(node: Btcd) -> None:
    node.stop()
    shutil.rmtree(node.datadir, ignore_errors=True)
