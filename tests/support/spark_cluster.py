"""A Spark standalone cluster on loopback for the tests: one master and workers started with
``spark-class`` from the pip-installed pyspark, each in its own process, work dir and ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).parent
VENV_PYTHON = sys.executable


def spark_env(base: Path) -> dict[str, str]:
    """Environment of the cluster's daemons and of spark-submit: the venv's Spark and Python,
    loopback only, logs and pid files under ``base``, no site configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    conf_dir = base / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    env.update(
        SPARK_HOME=str(SPARK_HOME),
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_LOG_DIR=str(base / "logs"),
        SPARK_PID_DIR=str(base / "pids"),
        PYSPARK_PYTHON=VENV_PYTHON,
        PYSPARK_DRIVER_PYTHON=VENV_PYTHON,
        PATH=f"{Path(VENV_PYTHON).parent}:{env.get('PATH', '')}",
    )
    return env


@dataclass
class Worker:
    proc: subprocess.Popen
    work_dir: Path
    log: Path


@dataclass
class Cluster:
    base: Path
    port: int
    webui_port: int
    env: dict[str, str]
    master: subprocess.Popen | None = None
    workers: list[Worker] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def state(self) -> dict:
        """The master's own JSON status page (workers, running and completed apps)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui_port}/json", timeout=10) as r:
            return json.load(r)

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            return subprocess.Popen(
                [str(SPARK_HOME / "bin" / "spark-class"), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def start(self, workers: int, cores: int, memory: str, timeout: float = 300) -> None:
        self.master = self._spawn(
            ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(self.port), "--webui-port", str(self.webui_port)],
            self.base / "logs" / "master.out",
        )  # fmt: skip
        for i in range(workers):
            work = self.base / f"worker{i}"
            work.mkdir(parents=True, exist_ok=True)
            log = self.base / "logs" / f"worker{i}.out"
            proc = self._spawn(
                ["org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1",
                 "--port", str(free_port()), "--webui-port", str(free_port()),
                 "--cores", str(cores), "--memory", memory, "--work-dir", str(work)],
                log,
            )  # fmt: skip
            self.workers.append(Worker(proc, work, log))
        deadline = time.monotonic() + timeout
        while True:
            for p in [self.master, *(w.proc for w in self.workers)]:
                if p.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited early:\n{self.logs()}")
            try:
                alive = [w for w in self.state()["workers"] if w["state"] == "ALIVE"]
                if len(alive) == workers:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not come up in {timeout}s:\n{self.logs()}")
            time.sleep(1)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((self.base / "logs").glob("*.out"))
        )

    def stop(self) -> None:
        for p in [*(w.proc for w in self.workers), self.master]:
            if p is None or p.poll() is not None:
                continue
            os.killpg(p.pid, signal.SIGTERM)
        for p in [*(w.proc for w in self.workers), self.master]:
            if p is None:
                continue
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)


def start_cluster(base: Path, workers: int = 2, cores: int = 1, memory: str = "1g") -> Cluster:
    cluster = Cluster(base, free_port(), free_port(), spark_env(base))
    try:
        cluster.start(workers, cores, memory)
    except BaseException:
        cluster.stop()
        raise
    return cluster
