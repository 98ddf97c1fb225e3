"""hodlflow.sql.run_foreground: signals reach the server it runs; one that ignores them is
killed after the grace period (``hodlflow sql`` / ``serve-sql`` must never hang on Ctrl-C)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

# The parent runs run_foreground in its own process (signal handlers live in a main thread) and
# prints the child's pid, so the test can signal the parent and then look at the child.
PARENT = textwrap.dedent(
    """
    import sys
    from hodlflow.sql import run_foreground

    child = [sys.executable, "-c", sys.argv[1]]
    code = run_foreground(child, {"PATH": "/usr/bin:/bin"}, grace_seconds=1.0)
    print("returned", code, flush=True)
    """
)


def _run(child_code: str) -> tuple[str, int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, child_code],
        stdout=subprocess.PIPE,
        text=True,
    )
    child_pid = int(parent.stdout.readline().split()[1])  # the child's "ready PID" line
    parent.send_signal(signal.SIGTERM)
    # A generous bound, only so that a hang fails the test instead of stalling the suite.
    out, _ = parent.communicate(timeout=60)
    return out, child_pid


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_child_that_stops_on_sigterm_ends_the_run_with_exit_0():
    out, pid = _run("import os, time; print('ready', os.getpid(), flush=True); time.sleep(120)")
    assert out.strip().splitlines()[-1] == "returned 0"
    assert _gone(pid)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    out, pid = _run(
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', os.getpid(), flush=True); time.sleep(120)"
    )
    assert out.strip().splitlines()[-1] == "returned 0"
    assert _gone(pid)
