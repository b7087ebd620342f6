"""Running one case of an untrusted submission in a fresh, limited child process.

The submission never runs in the grader's process.  Each case gets:

* a fresh ``python -I`` process (isolated mode: no ``PYTHON*`` variables, no
  user site, no script directory on ``sys.path``) with a clean environment,
  started in its own session, its working directory a fresh temporary one;
* no network, resource limits (memory, file size, CPU time, open files, no
  core dumps, number of processes for a sandbox user) and the sandbox user's
  uid/gid, all set by the harness on itself before the submission runs;
* a wall-clock timeout; stdout and stderr read concurrently and kept up to
  :data:`OUTPUT_LIMIT` bytes (the rest is read and discarded, so output can
  neither block the child on a full pipe nor fill the grader's memory); past
  :data:`FLOOD_LIMIT` bytes the grader hangs up and the case fails;
* a result pipe of its own, read up to :data:`RESULT_LIMIT` bytes;
* afterwards, SIGKILL for the process group, every remaining descendant (the
  grader is a child subreaper) and every process of the sandbox user.
"""
from __future__ import annotations

import json
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from nflows_np.grading import processes, transport
from nflows_np.grading.submission import Submission

OUTPUT_LIMIT = 64 * 2**10   # stdout / stderr bytes kept for the feedback
FLOOD_LIMIT = 8 * 2**20     # stdout / stderr bytes read before the grader hangs up
RESULT_LIMIT = 64 * 2**20   # result bytes accepted
DEFAULT_LIMITS = {
    "RLIMIT_AS": 2 * 2**30,      # address space: a memory hog gets MemoryError, not the machine
    "RLIMIT_FSIZE": 64 * 2**20,  # largest file the child may write
    "RLIMIT_CORE": 0,            # no core dumps
    "RLIMIT_NOFILE": 1024,       # open file descriptors
}
SANDBOX_NPROC = 64  # processes of the sandbox user (root is not bound by RLIMIT_NPROC)
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")


@dataclass
class Stream:
    """Bytes read from one pipe: the first ``limit`` kept, the rest counted and dropped.

    Past ``stop_after`` bytes the grader closes its end of the pipe: the child's
    next write fails (EPIPE), so a flood ends at once instead of keeping a
    core busy until the timeout.
    """

    limit: int
    stop_after: int
    data: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.total += len(chunk)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    @property
    def flooded(self) -> bool:
        return self.total > self.stop_after

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass
class CaseRun:
    """What happened to one case in the child.

    Attributes
    ----------
    arrays : dict or None
        The received outputs (float64, expected shapes) when the run succeeded.
    problem : str
        Empty on success; otherwise what went wrong, for the student.
    stdout, stderr : Stream
        Captured output (bounded).
    seconds : float
        Wall-clock time of the case.
    """

    arrays: dict[str, np.ndarray] | None
    problem: str
    stdout: Stream
    stderr: Stream
    seconds: float


def _child_env(case_dir: str) -> dict[str, str]:
    # A clean environment: nothing of the grader's (no PYTHONPATH, no tokens).
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": case_dir,
        "TMPDIR": case_dir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": case_dir,
    }


def _signal_name(returncode: int | None) -> str:
    if returncode is None or returncode >= 0:
        return ""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class Sandbox:
    """Context manager that runs cases and guarantees none of their processes survives.

    Parameters
    ----------
    python : str
        Interpreter for the child (must have numpy).
    user : str or None
        Sandbox user name: when the grader runs as root, the child runs with
        that user's uid/gid and no supplementary groups, and every process of
        that uid is killed after each case.  Use a dedicated account.
    limits : mapping
        Resource limits overriding :data:`DEFAULT_LIMITS` entries.
    """

    def __init__(self, python: str = sys.executable, user: str | None = None,
                 limits: Mapping[str, int] | None = None) -> None:
        self.python = python
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.user: tuple[int, int] | None = None
        if user is not None:
            entry = pwd.getpwnam(user)
            self.user = (entry.pw_uid, entry.pw_gid)
        self.notes: list[str] = []
        self._root = ""
        self._keep: frozenset[tuple[int, int]] = frozenset()
        self._was_subreaper: bool | None = None
        self._closed: set[int] = set()

    def __enter__(self) -> Sandbox:
        # The grader adopts every orphan of a case (setsid + double fork does
        # not escape it), so the /proc scan after each case sees them all.
        try:
            self._was_subreaper = processes.set_child_subreaper(True)
        except OSError as exc:
            self.notes.append(f"warning: could not become a child subreaper ({exc}); "
                              "detached processes are killed by group and user only")
        # Processes this grader already had are none of the cases' business.
        table = processes.process_table()
        self._keep = processes.snapshot(table, processes.descendants(table, os.getpid()))
        # With a sandbox user, the case directories must be reachable by that
        # user: /tmp (world-traversable) rather than a private TMPDIR.
        parent = "/tmp" if self.user is not None and os.path.isdir("/tmp") else None
        self._root = tempfile.mkdtemp(prefix="nflows_np_grade_", dir=parent)
        os.chmod(self._root, 0o711)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill_leftovers()
        shutil.rmtree(self._root, ignore_errors=True)
        if self._was_subreaper is False:
            processes.set_child_subreaper(False)

    def kill_leftovers(self, dont_reap: frozenset[int] = frozenset()) -> None:
        """SIGKILL every process a case started; record any that could not be killed."""
        alive = processes.kill_leftovers(os.getpid(), keep=self._keep, dont_reap=dont_reap,
                                         user=self.user)
        if alive:
            self.notes.append(f"warning: processes {alive} survived SIGKILL")

    def _prepare(self, submission: Submission, driver: str,
                 inputs: Mapping[str, np.ndarray], result_fd: int, timeout: float) -> str:
        case_dir = tempfile.mkdtemp(dir=self._root)
        paths = {name: os.path.join(case_dir, name)
                 for name in ("harness.py", "case.json", "inputs.npz", "driver.py", "submission.py")}
        shutil.copyfile(HARNESS, paths["harness.py"])
        transport.write_inputs(paths["inputs.npz"], inputs)
        with open(paths["driver.py"], "w", encoding="utf-8") as handle:
            handle.write(driver)
        with open(paths["submission.py"], "w", encoding="utf-8") as handle:
            handle.write(submission.source)
        limits = dict(self.limits)
        # CPU seconds: a little more than the wall-clock timeout, which normally
        # ends the case first; threads can burn CPU faster (SIGXCPU, then SIGKILL).
        limits["RLIMIT_CPU"] = [int(timeout) + 2, int(timeout) + 3]
        if self.user is not None:
            limits["RLIMIT_NPROC"] = SANDBOX_NPROC
        # The harness drops to the sandbox user itself, right after leaving the network.
        config = {"result_fd": result_fd, "limits": limits, "user": self.user,
                  "inputs": paths["inputs.npz"],
                  "driver": paths["driver.py"], "submission": paths["submission.py"],
                  "submission_name": submission.filename}
        with open(paths["case.json"], "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        if self.user is not None:
            for path in [case_dir, *paths.values()]:
                os.chown(path, *self.user)
        return case_dir

    def run(self, submission: Submission, driver: str, inputs: Mapping[str, np.ndarray],
            shapes: Mapping[str, tuple[int, ...]], timeout: float) -> CaseRun:
        """Run one case; return the decoded outputs or what went wrong.

        Parameters
        ----------
        submission : Submission
            The untrusted source.
        driver : str
            Source of ``drive(namespace, inputs)`` (see :mod:`nflows_np.grading.cases`).
        inputs : mapping
            Numeric arrays for the driver.
        shapes : mapping
            Expected output names and shapes; anything else is refused.
        timeout : float
            Wall-clock seconds.
        """
        start = time.monotonic()
        stdout, stderr = Stream(OUTPUT_LIMIT, FLOOD_LIMIT), Stream(OUTPUT_LIMIT, FLOOD_LIMIT)
        result = Stream(RESULT_LIMIT, RESULT_LIMIT)
        # Our own pipes (read ends: ours; write ends: the child's 1, 2 and result fd).
        pipes = [os.pipe() for _ in range(3)]
        streams = {pipes[0][0]: stdout, pipes[1][0]: stderr, pipes[2][0]: result}
        write_ends = [write for _, write in pipes]
        case_dir = ""
        pid = None
        try:
            case_dir = self._prepare(submission, driver, inputs, pipes[2][1], timeout)
            proc = subprocess.Popen(
                [self.python, "-I", os.path.join(case_dir, "harness.py"),
                 os.path.join(case_dir, "case.json")],
                cwd=case_dir, env=_child_env(case_dir), stdin=subprocess.DEVNULL,
                stdout=pipes[0][1], stderr=pipes[1][1], pass_fds=(pipes[2][1],),
                start_new_session=True)  # own session and process group, killed as one
            pid = proc.pid
            for fd in write_ends:
                os.close(fd)
            write_ends = []
            timed_out = self._watch(pid, streams, start + timeout)
            self._end_case(pid)
            self._drain(streams, time.monotonic() + 2.0)
            returncode = proc.wait()
            seconds = time.monotonic() - start
            problem = self._problem(timed_out, returncode, timeout, stdout, stderr, result)
            if problem:
                return CaseRun(None, problem, stdout, stderr, seconds)
            try:
                arrays = transport.read_result(bytes(result.data), shapes)
            except (transport.StudentError, transport.ResultError) as exc:
                return CaseRun(None, str(exc).rstrip(), stdout, stderr, seconds)
            return CaseRun(arrays, "", stdout, stderr, seconds)
        finally:
            if pid is not None:
                self._end_case(pid)
                proc.wait()
            for fd in write_ends + [fd for fd in streams if fd not in self._closed]:
                os.close(fd)
            self._closed.clear()
            if case_dir:
                # Only now, with every process of the case dead, is its directory removed.
                shutil.rmtree(case_dir, ignore_errors=True)

    def _watch(self, pid: int, streams: dict[int, Stream], deadline: float) -> bool:
        """Read the pipes until the child exits (False) or the deadline passes (True)."""
        selector = selectors.DefaultSelector()
        for fd in streams:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        try:
            while True:
                # WNOWAIT: notice the exit without reaping, so the pid (= process
                # group id) cannot be reused before the group is killed.
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                for key, _ in selector.select(timeout=min(remaining, 0.02)):
                    self._read_into(key.fd, streams[key.fd], selector)
        finally:
            selector.close()

    def _read_into(self, fd: int, stream: Stream, selector: selectors.BaseSelector) -> None:
        """Read what is available; stop reading at end of file or past the flood limit."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        stream.feed(chunk)
        if not chunk or stream.flooded:
            selector.unregister(fd)
        if stream.flooded and fd not in self._closed:
            os.close(fd)  # hang up: the child's next write gets EPIPE
            self._closed.add(fd)

    def _drain(self, streams: dict[int, Stream], deadline: float) -> None:
        """Read what the dead case left in the pipes (all writers are killed by now)."""
        selector = selectors.DefaultSelector()
        for fd in streams:
            if fd not in self._closed:
                selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map() and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.05):
                    self._read_into(key.fd, streams[key.fd], selector)
        finally:
            selector.close()

    def _end_case(self, pid: int) -> None:
        # The case is over once the harness has exited or timed out: kill its
        # whole process group, then every descendant and sandbox-user process.
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.kill_leftovers(dont_reap=frozenset({pid}))

    def _problem(self, timed_out: bool, returncode: int, timeout: float,
                 stdout: Stream, stderr: Stream, result: Stream) -> str:
        """What went wrong with the run, for the student ("" if a result came back)."""
        if stdout.flooded or stderr.flooded:
            return (f"your code wrote more than {FLOOD_LIMIT // 2**20} MiB to stdout/stderr: "
                    "the grader stopped reading and failed the case")
        if timed_out:
            return (f"time limit exceeded: stopped after {timeout:.3g} s "
                    "(an endless loop, or far too slow?)")
        if result.truncated:
            return f"the result sent back is larger than {RESULT_LIMIT // 2**20} MiB"
        if result.data:
            return ""
        signame = _signal_name(returncode)
        if signame == "SIGXCPU":
            return "CPU time limit exceeded (threads or processes burning CPU?)"
        if signame == "SIGXFSZ":
            return f"file size limit exceeded ({self.limits['RLIMIT_FSIZE'] // 2**20} MiB)"
        if signame:
            return f"the process running your code was killed by {signame}"
        return (f"the process running your code exited (status {returncode}) without "
                "returning a result: does your code call os._exit or exit the interpreter?")
