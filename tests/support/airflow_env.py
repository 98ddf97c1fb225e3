"""Run the project's Airflow (its own virtual environment, `make airflow-setup`) from the tests.

The test suite runs in .venv; Airflow 3.3.2 lives in .venv-airflow with hodlflow installed into
it, so its `spark-submit` runs the jobs with hodlflow. Everything goes through subprocesses.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AF_BIN = ROOT / ".venv-airflow" / "bin"
DAGS = ROOT / "airflow_dags"


def require_airflow() -> Path:
    """The bin folder of Airflow's own virtual environment; a clear error when it is missing."""
    if not (AF_BIN / "airflow").exists():
        raise RuntimeError(f"no {AF_BIN / 'airflow'}: run `make airflow-setup` (make test does)")
    return AF_BIN


def airflow_env(home: Path, variables: dict[str, str], spark_master: str = "local[1]") -> dict:
    """Environment for the airflow CLI: its own AIRFLOW_HOME (SQLite), no examples, the DAGs
    folder of the checkout, Variables and the Spark connection from the environment, and the
    Airflow venv's bin first on PATH (its spark-submit and hodlflow)."""
    require_airflow()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SPARK_HOME"))}
    env.pop("PYSPARK_PYTHON", None)  # the jobs must run on the Airflow venv's Python
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW_CONN_HODLFLOW_SPARK=f'{{"conn_type": "spark", "host": "{spark_master}"}}',
        PATH=f"{AF_BIN}:{env.get('PATH', '')}",
    )
    for name, value in variables.items():
        env[f"AIRFLOW_VAR_{name.upper()}"] = value
    return env


def run(args: list[str], env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def migrate(env: dict) -> None:
    done = run([str(AF_BIN / "airflow"), "db", "migrate"], env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
