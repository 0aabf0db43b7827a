"""``loadtest.run``: signals reach the campaign's main greenlet, whichever greenlet they interrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]

#: A campaign process in miniature: loadtest.run's patching and handlers, a thread of ours that keeps running
#: Python code (as the container stats sampler does), and a main greenlet waiting for the signal.
_CAMPAIGN = """
import os, sys, threading, time
from loadtest.run import interrupt_main_greenlet_on

signum = int(sys.argv[1])
interrupt_main_greenlet_on(signum)

def busy():
    while True:
        sum(range(20000))
        time.sleep(0)

threading.Thread(target=busy, daemon=True).start()
threading.Thread(target=lambda: (time.sleep(0.5), os.kill(os.getpid(), signum)), daemon=True).start()
try:
    deadline = time.time() + 10
    while time.time() < deadline:
        time.sleep(0.01)
    print("missed")
except KeyboardInterrupt:
    print("main greenlet interrupted")
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_interrupts_the_main_greenlet_even_while_a_thread_runs(signum: int) -> None:
    """Python's own handler would raise in the busy thread, which swallows it: the campaign would go on."""
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CHECKOUT), env.get("PYTHONPATH", "")) if p)
    for _ in range(3):  # the busy thread holds the interpreter most of the time: each run is a fair trial
        done = subprocess.run(
            [sys.executable, "-c", _CAMPAIGN, str(int(signum))],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.stdout.strip() == "main greenlet interrupted", done.stdout + done.stderr[-2000:]
