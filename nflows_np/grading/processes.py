"""Finding and killing every process a submission started (Linux, ``/proc``).

A case must leave nothing behind, not even a process that detached itself with
``setsid`` and a double fork.  Three nets catch them:

* in the sandbox, the case's PID namespace dies with its first process; in a
  self-check, the case runs in its own session and process group, killed as a whole;
* the grader is a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``), so an
  orphan is re-parented to the grader instead of ``init``: every process the
  submission starts stays a descendant of the grader, and a scan of ``/proc``
  finds it -- a thread-group leader that exited while its threads run (shown
  as a zombie) included: it is signalled too, which ends the threads.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


@dataclass(frozen=True)
class ProcInfo:
    """One line of the process table: parent pid, state letter (``R``, ``S``, ``Z``...),
    and start time (clock ticks after boot; with the pid, it names a process uniquely)."""

    ppid: int
    state: str
    start: int


def _prctl(option: int, arg: int | ctypes.c_int | ctypes._Pointer = 0) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(option, arg, 0, 0, 0)


def set_child_subreaper(enable: bool = True) -> bool:
    """Make this process a child subreaper (or stop being one).

    Returns the previous setting, so a caller can restore it.  Raises
    ``OSError`` where the kernel refuses (not Linux, or Linux < 3.4).
    """
    previous = ctypes.c_int(0)
    if _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous)) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_GET_CHILD_SUBREAPER) failed")
    if _prctl(_PR_SET_CHILD_SUBREAPER, int(enable)) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    return bool(previous.value)


def process_table() -> dict[int, ProcInfo]:
    """Every process visible in ``/proc``: ``{pid: ProcInfo(ppid, state)}``."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
        except OSError:  # the process ended while we looked
            continue
        # The command name (field 2) may hold spaces and ')': split after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(name)] = ProcInfo(ppid=int(fields[1]), state=fields[0], start=int(fields[19]))
    return table


def descendants(table: dict[int, ProcInfo], root: int) -> set[int]:
    """Pids whose chain of parents leads to ``root`` (``root`` excluded)."""
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info.ppid, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _signal(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def snapshot(table: dict[int, ProcInfo], pids: set[int]) -> frozenset[tuple[int, int]]:
    """``(pid, start time)`` of ``pids``: survives pid reuse, unlike the bare pids."""
    return frozenset((pid, table[pid].start) for pid in pids if pid in table)


def _running(pid: int, info: ProcInfo) -> bool:
    """Alive, or a zombie thread-group leader whose other threads still run."""
    if info.state != "Z":
        return info.state != "X"
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1  # the leader's own entry, and live threads
    except OSError:
        return False


def kill_leftovers(root: int, keep: frozenset[tuple[int, int]] = frozenset(),
                   dont_reap: frozenset[int] = frozenset(), patience: float = 10.0) -> list[int]:
    """SIGKILL every descendant of ``root`` not in ``keep``.

    ``keep`` holds ``(pid, start time)`` pairs (see :func:`snapshot`) of
    processes that were there before.  Repeats until a scan finds nothing
    running, reaping the zombies that were re-parented to ``root`` (except
    ``dont_reap``, e.g. a ``Popen`` child that ``Popen.wait`` will reap).
    Returns the pids still running after ``patience`` seconds (normally none).
    """
    deadline = time.monotonic() + patience
    while True:
        table = process_table()
        victims = {pid for pid in descendants(table, root) if (pid, table[pid].start) not in keep}
        running = [pid for pid in victims if _running(pid, table[pid])]
        zombies = [pid for pid in victims if table[pid].state == "Z" and table[pid].ppid == root
                   and pid not in dont_reap]
        for pid in running:
            _signal(pid)
        for pid in zombies:
            _reap(pid)
        if not running and not zombies:
            return []
        if time.monotonic() > deadline:
            return running
        time.sleep(0.005)
