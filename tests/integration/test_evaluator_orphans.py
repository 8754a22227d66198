"""An evaluator whose owning process is killed (``kill -9``) exits instead of waiting forever.

A forkserver child is not the owner's child and its task queue never reaches end-of-file, so
without the owner check these processes outlived every killed ``ocr predict`` or training run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

OWNER = """
import sys, time
from ocr.evaluation.pool import EvaluatorPool
pool = EvaluatorPool(2).start()
pool.wait_ready()
print(*pool.pids, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_evaluators_exit_when_their_owner_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        left = [pid for pid in pids if _alive(pid)]
        for pid in left:  # do not leave them behind when the assertion fails
            os.kill(pid, signal.SIGKILL)
        assert not left, f"evaluators {left} outlived their killed owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
