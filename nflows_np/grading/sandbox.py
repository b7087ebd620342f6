"""Running one case of an untrusted submission in a fresh, limited child process.

The submission never runs in the grader's process.  Each case gets a fresh
``python -I`` running :mod:`.harness`, in one of two modes:

* **sandbox** (``isolated=True``): inside a bubblewrap sandbox of its own, as
  the unprivileged sandbox user (see :mod:`.isolation`): own mount, PID, IPC,
  network and user namespaces, only the interpreter and numpy visible, the
  case's files copied in from memory, private ``/tmp`` and ``/dev/shm``, no
  process creation, killed as one namespace;
* **self-check** (``isolated=False``, a student grading their own code where
  bubblewrap is missing): a plain child process in its own session and a
  private temporary directory -- resource limits and cleanup, but no boundary.

Both: a clean environment; resource limits set by the harness on itself; a
wall-clock timeout; stdout and stderr read concurrently and kept up to
:data:`OUTPUT_LIMIT` bytes (past :data:`FLOOD_LIMIT` the grader hangs up); a
result pipe read up to the size of the largest well-formed expected result;
afterwards every process of the case killed, whatever its state.
"""
from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from nflows_np.grading import framing, isolation, processes
from nflows_np.grading.submission import Submission

OUTPUT_LIMIT = 64 * 2**10   # stdout / stderr bytes kept for the feedback
FLOOD_LIMIT = 8 * 2**20     # stdout / stderr bytes read before the grader hangs up
EXIT_GRACE = 1.0            # seconds the child has to exit once its result is complete
DEFAULT_LIMITS = {
    "RLIMIT_AS": 2 * 2**30,      # address space of the case's one process (threads share it)
    "RLIMIT_FSIZE": 32 * 2**20,  # largest file the child may write
    "RLIMIT_CORE": 0,            # no core dumps
    "RLIMIT_NOFILE": 256,        # open file descriptors
}
_HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(_HERE, "harness.py")
FRAMING = os.path.join(_HERE, "framing.py")


@dataclass
class Stream:
    """Bytes read from one pipe: the first ``limit`` kept, the rest counted and dropped.

    Past ``stop_after`` bytes the grader closes its end of the pipe: the child's
    next write fails (EPIPE), so a flood ends at once.
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
    cleanup : str
        What the grader had to kill after the result came back ("" if nothing).
    """

    arrays: dict[str, np.ndarray] | None
    problem: str
    stdout: Stream
    stderr: Stream
    seconds: float
    cleanup: str = ""


def _child_env(home: str) -> dict[str, str]:
    # A clean environment: nothing of the grader's (no PYTHONPATH, no tokens).
    return {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def _signal_name(returncode: int | None) -> str:
    if returncode is None or returncode >= 0:
        return ""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def remove_tree(path: str) -> None:
    """Delete a directory tree of any depth (no recursion), not following links."""
    stack = [path]
    while stack:
        top = stack[-1]
        try:
            entries = list(os.scandir(top))
        except FileNotFoundError:
            stack.pop()
            continue
        subdirs = [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        if subdirs:
            stack.extend(subdirs)
        else:
            os.rmdir(top)
            stack.pop()


class Sandbox:
    """Context manager that runs cases and guarantees none of their processes survives.

    Parameters
    ----------
    python : str
        Interpreter for the child (must have numpy).
    user : (uid, gid) or None
        Who runs the child (with ``isolated``, bwrap itself runs as this user;
        ``None``: the grader's own user).
    limits : mapping
        Resource limits overriding :data:`DEFAULT_LIMITS` entries.
    isolated : bool
        Use the bubblewrap sandbox (see the module docstring).
    """

    def __init__(self, python: str = sys.executable, user: tuple[int, int] | None = None,
                 limits: Mapping[str, int] | None = None, isolated: bool = True) -> None:
        self.python = python
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.user = user
        self.isolated = isolated
        self.notes: list[str] = []
        # Shown in every case process's command line: finds one grading's processes.
        self.grading_id = f"nflows-grading-{secrets.token_hex(8)}"
        self._keep: frozenset[tuple[int, int]] = frozenset()
        self._was_subreaper: bool | None = None
        self._closed: set[int] = set()
        self._bwrap = ""
        self._interpreter: isolation.Interpreter | None = None
        self._seccomp = b""
        self._init_fd: int | None = None

    def __enter__(self) -> Sandbox:
        if self.isolated:
            bwrap = isolation.find_bwrap()
            if bwrap is None:
                raise OSError("bubblewrap (bwrap) is not installed")
            self._bwrap = bwrap
            self._interpreter = isolation.probe_interpreter(self.python, self.user)
            self._seccomp = isolation.seccomp_filter()
        # The grader adopts every orphan of a case, so a /proc scan finds them all.
        try:
            self._was_subreaper = processes.set_child_subreaper(True)
        except OSError as exc:
            self.notes.append(f"warning: could not become a child subreaper ({exc})")
        table = processes.process_table()
        self._keep = processes.snapshot(table, processes.descendants(table, os.getpid()))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill_leftovers()
        if self._was_subreaper is False:
            processes.set_child_subreaper(False)

    def kill_leftovers(self, dont_reap: frozenset[int] = frozenset()) -> None:
        """SIGKILL every process a case started; record any that could not be killed."""
        alive = processes.kill_leftovers(os.getpid(), keep=self._keep, dont_reap=dont_reap)
        if alive:
            self.notes.append(f"warning: processes {alive} survived SIGKILL")

    def _case_files(self, submission: Submission, driver: str, inputs: Mapping[str, np.ndarray],
                    result_fd: int, limits: dict, outputs: list[str]) -> dict[str, bytes]:
        config = {"result_fd": result_fd, "limits": limits, "outputs": outputs,
                  "submission_name": submission.filename}
        with open(HARNESS, "rb") as harness, open(FRAMING, "rb") as frames:
            return {"harness.py": harness.read(), "framing.py": frames.read(),
                    "case.json": json.dumps(config).encode(),
                    "inputs.bin": framing.encode(dict(inputs)),
                    "driver.py": driver.encode("utf-8"),
                    "submission.py": submission.source.encode("utf-8", "surrogatepass")}

    def _start(self, files: dict[str, bytes], pass_fds: list[int], stdout: int,
               stderr: int, info_fd: int) -> tuple[subprocess.Popen, str]:
        """Start the harness; returns the process and the directory to remove afterwards."""
        who = {} if self.user is None else {"user": self.user[0], "group": self.user[1], "extra_groups": []}
        if self.isolated:
            assert self._interpreter is not None
            fds = {name: isolation.memory_file(name, data) for name, data in files.items()}
            seccomp = isolation.memory_file("seccomp", self._seccomp)
            argv = [self._interpreter.executable, "-I", f"{isolation.CASE_DIR}/harness.py",
                    isolation.CASE_DIR, self.grading_id]
            command = isolation.bwrap_command(self._bwrap, self._interpreter, fds, seccomp, info_fd,
                                              _child_env(isolation.WORK_DIR), argv)
            try:
                proc = subprocess.Popen(command, cwd="/", env={}, stdin=subprocess.DEVNULL,
                                        stdout=stdout, stderr=stderr, start_new_session=True,
                                        pass_fds=(*pass_fds, info_fd, seccomp, *fds.values()), **who)
            finally:
                for fd in (seccomp, *fds.values()):
                    os.close(fd)
            return proc, ""
        case_dir = tempfile.mkdtemp(prefix="nflows_np_case_")
        for name, data in files.items():
            with open(os.path.join(case_dir, name), "wb") as handle:
                handle.write(data)
        work = os.path.join(case_dir, "work")
        os.mkdir(work)
        proc = subprocess.Popen([self.python, "-I", os.path.join(case_dir, "harness.py"), case_dir,
                                 self.grading_id],
                                cwd=work, env=_child_env(work), stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr, start_new_session=True,
                                pass_fds=tuple(pass_fds))
        return proc, case_dir

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
            Expected output names and shapes (float64); anything else is refused.
        timeout : float
            Wall-clock seconds.
        """
        start = time.monotonic()
        expected = {name: ("<f8", tuple(shape)) for name, shape in shapes.items()}
        limit = framing.frame_limit(expected)
        stdout, stderr = Stream(OUTPUT_LIMIT, FLOOD_LIMIT), Stream(OUTPUT_LIMIT, FLOOD_LIMIT)
        result, info = Stream(limit, limit), Stream(4096, 4096)
        pipes = [os.pipe() for _ in range(4)]  # stdout, stderr, result, bwrap's info
        streams = {pipes[0][0]: stdout, pipes[1][0]: stderr, pipes[2][0]: result, pipes[3][0]: info}
        write_ends = [write for _, write in pipes]
        proc = None
        case_dir = ""
        # CPU seconds: a little more than the wall-clock timeout, which normally ends the case first.
        limits = {**self.limits, "RLIMIT_CPU": [int(timeout) + 2, int(timeout) + 3]}
        try:
            files = self._case_files(submission, driver, inputs, pipes[2][1], limits, list(shapes))
            proc, case_dir = self._start(files, [pipes[2][1]], pipes[0][1], pipes[1][1], pipes[3][1])
            for fd in write_ends:
                os.close(fd)
            write_ends = []
            timed_out, lingered = self._watch(proc.pid, streams, start + timeout, result, info)
            self._end_case(proc)
            self._drain(streams, time.monotonic() + 1.0)
            returncode = proc.wait()
            seconds = time.monotonic() - start
            cleanup = ("your code left threads or processes running after it returned its "
                       "result; the grader killed them") if lingered else ""
            problem = self._problem(timed_out and not lingered, returncode, timeout, stdout, stderr, result)
            if problem:
                return CaseRun(None, problem, stdout, stderr, seconds, cleanup)
            try:
                arrays = framing.decode(bytes(result.data), expected)
            except framing.ChildError as exc:
                return CaseRun(None, str(exc).rstrip(), stdout, stderr, seconds, cleanup)
            except (framing.FrameError, ValueError) as exc:
                return CaseRun(None, f"the result sent back is malformed: {exc}", stdout, stderr,
                               seconds, cleanup)
            return CaseRun(arrays, "", stdout, stderr, seconds, cleanup)
        finally:
            if proc is not None and proc.returncode is None:
                self._end_case(proc)
                proc.wait()
            if self._init_fd is not None:
                os.close(self._init_fd)
                self._init_fd = None
            for fd in write_ends + [fd for fd in streams if fd not in self._closed]:
                os.close(fd)
            self._closed.clear()
            if case_dir:
                remove_tree(case_dir)  # only now, with every process of the case dead

    def _watch(self, pid: int, streams: dict[int, Stream], deadline: float,
               result: Stream, info: Stream) -> tuple[bool, bool]:
        """Read the pipes until the child exits, the deadline passes, or it lingers after its result.

        Returns ``(timed_out, lingered)``.
        """
        selector = selectors.DefaultSelector()
        for fd in streams:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        complete_at = None
        try:
            while True:
                # WNOWAIT: notice the exit without reaping (the pid stays ours until proc.wait).
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return False, False
                if self.isolated and self._init_fd is None and info.data.rstrip().endswith(b"}"):
                    self._init_fd = self._pin_namespace_init(pid, info)
                now = time.monotonic()
                if complete_at is None and result.data.endswith(framing.END):
                    complete_at = now
                if complete_at is not None and now > complete_at + EXIT_GRACE:
                    return True, True
                if now >= deadline:
                    return True, False
                for key, _ in selector.select(timeout=min(deadline - now, 0.02)):
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

    def _pin_namespace_init(self, bwrap_pid: int, info: Stream) -> int | None:
        """A pidfd of the sandbox's first process (from bwrap's ``--info-fd``), if it is still bwrap's child.

        A pidfd cannot be re-pointed at another process when the pid is reused,
        so the kill in :meth:`_end_case` reaches this case and no other.
        """
        try:
            child = int(json.loads(bytes(info.data).decode("utf-8", "replace"))["child-pid"])
            fd = os.pidfd_open(child)
        except (ValueError, KeyError, TypeError, OSError):
            return None
        if processes.process_table().get(child, processes.ProcInfo(0, "X", 0)).ppid != bwrap_pid:
            os.close(fd)
            return None
        return fd

    def _end_case(self, proc: subprocess.Popen) -> None:
        # Sandbox: SIGKILL the namespace's first process -- the kernel then kills
        # every process of the case, a zombie leader's threads included -- and
        # bwrap (whose death kills that process too: --die-with-parent).
        # Self-check: the session's process group.  Then every remaining
        # descendant (the grader is a child subreaper).  ``proc`` is not reaped
        # yet (waitid WNOWAIT), so its pid is still its own.
        if self.isolated:
            if self._init_fd is not None:
                try:
                    signal.pidfd_send_signal(self._init_fd, signal.SIGKILL)
                except OSError:
                    pass
            target = proc.pid
        else:
            target = -proc.pid
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.kill_leftovers(dont_reap=frozenset({proc.pid}))

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
            return (f"the result sent back is larger than the expected result "
                    f"({result.limit} bytes at most)")
        if result.data:
            return ""
        signame = _signal_name(returncode)
        if signame == "SIGXCPU":
            return "CPU time limit exceeded (threads burning CPU?)"
        if signame == "SIGXFSZ":
            return f"file size limit exceeded ({self.limits['RLIMIT_FSIZE'] // 2**20} MiB)"
        if signame:
            return f"the process running your code was killed by {signame}"
        return (f"the process running your code exited (status {returncode}) without "
                "returning a result: does your code call os._exit or exit the interpreter?")
