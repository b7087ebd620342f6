"""Cleanup outside the sandbox (the self-check): a zombie leader with live threads is killed too."""
from __future__ import annotations

import ctypes
import os
import platform
import threading
import time

import pytest

from nflows_np.grading import processes

SYS_EXIT = {"x86_64": 60, "aarch64": 93}.get(platform.machine())


@pytest.mark.skipif(SYS_EXIT is None, reason="SYS_exit number unknown on this architecture")
def test_a_zombie_leader_with_live_threads_is_killed():
    table = processes.process_table()
    keep = processes.snapshot(table, processes.descendants(table, os.getpid()))
    pid = os.fork()
    if pid == 0:  # a detached child whose main thread exits while another thread sleeps
        os.setsid()
        threading.Thread(target=lambda: time.sleep(60)).start()
        ctypes.CDLL(None).syscall(SYS_EXIT, 0)
    deadline = time.monotonic() + 10
    while processes.process_table().get(pid, processes.ProcInfo(0, "R", 0)).state != "Z":
        assert time.monotonic() < deadline, "the leader never became a zombie"
        time.sleep(0.01)
    assert len(os.listdir(f"/proc/{pid}/task")) == 2  # the zombie leader and its live thread
    assert processes.kill_leftovers(os.getpid(), keep=keep, patience=5.0) == []
    assert not os.path.exists(f"/proc/{pid}")
