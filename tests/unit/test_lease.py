"""The warehouse lease on a local warehouse: one writing step at a time, a dead holder's lease
taken over. Real processes and files; the Hadoop path and a refused CLI step are in
tests/integration/test_lease.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hodlflow.lease import LeaseError, lease_path, live_holder, warehouse_lease


def wh(tmp_path: Path, prefix: str = "") -> SimpleNamespace:
    return SimpleNamespace(warehouse=str(tmp_path / "warehouse"), db_prefix=prefix)


def lease_file(settings) -> Path:
    return Path(lease_path(settings))


def from_another_process(s, step: str, ttl_s: float = 120) -> subprocess.CompletedProcess:
    """Try the lease in a new process of this host: exit 3 and the message when refused."""
    code = (
        "import sys; from types import SimpleNamespace as N; from hodlflow.lease import *\n"
        f"s = N(warehouse={s.warehouse!r}, db_prefix={s.db_prefix!r})\n"
        f"try:\n    with warehouse_lease(None, s, {step!r}, ttl_s={ttl_s}): pass\n"
        "except LeaseError as e:\n    print(e); sys.exit(3)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_second_step_is_refused_naming_the_holder_and_runs_once_the_first_ends(tmp_path):
    s = wh(tmp_path)
    with warehouse_lease(None, s, "ingest"):
        held = json.loads(lease_file(s).read_text())
        assert (held["step"], held["pid"], held["host"]) == (
            "ingest",
            os.getpid(),
            socket.gethostname(),
        )
        # Another process of this host trying the same warehouse: refused, told who holds it.
        done = from_another_process(s, "entities")
        assert done.returncode == 3, done.stderr
        assert f"in use by `ingest` (host {socket.gethostname()}, pid {os.getpid()}" in done.stdout
        assert "`entities` did not start" in done.stdout
        # Another database prefix in the same warehouse is another lease.
        with warehouse_lease(None, wh(tmp_path, "t1_"), "entities"):
            pass
    assert not lease_file(s).exists()
    with warehouse_lease(None, s, "entities"):
        assert json.loads(lease_file(s).read_text())["step"] == "entities"


def test_one_process_may_nest_its_steps(tmp_path):
    s = wh(tmp_path)
    with warehouse_lease(None, s, "metrics"):
        with warehouse_lease(None, s, "metrics (prices)"):
            pass
        assert lease_file(s).exists()  # the inner step's end does not release the outer's
    assert not lease_file(s).exists()


def test_a_failed_step_releases_the_lease(tmp_path):
    s = wh(tmp_path)
    with pytest.raises(RuntimeError, match="step failed"), warehouse_lease(None, s, "entities"):
        raise RuntimeError("step failed")
    assert not lease_file(s).exists()


def test_the_lease_of_a_killed_holder_on_this_host_is_taken_over(tmp_path):
    s = wh(tmp_path)
    code = (
        "import time; from types import SimpleNamespace as N; from hodlflow.lease import *\n"
        f"with warehouse_lease(None, N(warehouse={s.warehouse!r}, db_prefix=''), 'ingest'):\n"
        "    print('held', flush=True); time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LeaseError, match=f"pid {holder.pid}"):
        with warehouse_lease(None, s, "entities"):
            pass
    assert f"`ingest` (host {socket.gethostname()}, pid {holder.pid}, " in live_holder(s)
    holder.send_signal(signal.SIGKILL)  # dies without releasing
    holder.wait()
    assert json.loads(lease_file(s).read_text())["pid"] == holder.pid
    assert live_holder(s) is None  # its holder is gone: nobody to name
    said = []
    with warehouse_lease(None, s, "entities", log=said.append):
        assert json.loads(lease_file(s).read_text())["pid"] == os.getpid()
    assert said == [f"took over the lease left by `ingest` (host {socket.gethostname()}, pid "
                    f"{holder.pid}, " + said[0].split(f"pid {holder.pid}, ", 1)[1]]  # fmt: skip
    assert said[0].endswith("): its holder is gone")


def _foreign(s, renewed: float) -> None:
    """A lease written by a step on another host, last renewed at ``renewed``."""
    path = lease_file(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"step": "maintain", "host": "node-7", "pid": 1, "since": renewed,
                                "renewed": renewed, "token": "x"}))  # fmt: skip


def test_another_hosts_lease_holds_while_renewed_and_is_taken_over_after_the_ttl(tmp_path):
    s = wh(tmp_path)
    _foreign(s, time.time() - 30)
    with pytest.raises(LeaseError, match=r"`maintain` \(host node-7, pid 1, .* renewed 30 s ago\)"):
        with warehouse_lease(None, s, "ingest", ttl_s=120):
            pass
    _foreign(s, time.time() - 121)
    with warehouse_lease(None, s, "ingest", ttl_s=120):
        assert json.loads(lease_file(s).read_text())["host"] == socket.gethostname()


def test_the_holder_renews_its_lease_so_a_long_step_is_not_taken_over(tmp_path):
    s = wh(tmp_path)
    with warehouse_lease(None, s, "ingest", ttl_s=0.4):
        first = json.loads(lease_file(s).read_text())["renewed"]
        time.sleep(1.0)  # 2.5 TTLs: without renewals the lease would look abandoned
        assert json.loads(lease_file(s).read_text())["renewed"] > first
        done = from_another_process(s, "entities", ttl_s=0.4)
        assert done.returncode == 3 and "in use by `ingest`" in done.stdout, done


def test_a_lease_never_written_whole_is_taken_over_once_its_writer_is_surely_gone(tmp_path):
    s = wh(tmp_path)
    path = lease_file(s)
    path.parent.mkdir(parents=True)
    path.write_text('{"step": "ing')  # its writer was killed while writing it
    with pytest.raises(LeaseError, match="in use by a step whose lease is being written"):
        with warehouse_lease(None, s, "entities"):
            pass
    old = time.time() - 11
    os.utime(path, (old, old))
    with warehouse_lease(None, s, "entities"):
        assert json.loads(path.read_text())["step"] == "entities"
