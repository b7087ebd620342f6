"""The program that runs ONE grading case inside the sandboxed child process.

The grader copies this file into a fresh case directory and starts it as
``python -I harness.py case.json``.  It is deliberately standalone (standard
library and numpy only): the child cannot import ``nflows_np``, and nothing here
is trusted by the grader -- whatever the child sends back is only data.

Steps
-----
1. isolate itself: a new, empty network namespace (when started as root),
   hard resource limits, the sandbox user's uid/gid (if any), no privilege
   gain -- all before any untrusted code runs;
2. install an import hook that refuses ``nflows_np``;
3. load the case inputs from ``inputs.npz`` (``allow_pickle=False``);
4. execute the submission in a fresh namespace, then the grader's driver,
   whose ``drive(namespace, inputs)`` returns a ``dict`` of arrays;
5. convert every output to a plain float64 ``ndarray`` and send them as one
   ``.npz`` through the result pipe -- or an ``__error__`` entry holding the
   message as UTF-8 bytes -- then leave at once with ``os._exit``.
"""
import ctypes
import io
import json
import os
import resource
import sys
import traceback

_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNET = 0x40000000
_REFUSED_PACKAGE = "nflows_np"
_MAX_MESSAGE_CHARS = 8000
_MAX_FRAMES = 8


class _RefuseReferenceImport:
    """Meta-path finder that refuses ``nflows_np`` (the reference solution)."""

    def find_spec(self, name, path=None, target=None):
        if name == _REFUSED_PACKAGE or name.startswith(_REFUSED_PACKAGE + "."):
            raise ImportError(
                f"import of {name!r} refused by the grader: a graded submission "
                f"must not use the {_REFUSED_PACKAGE} library (it holds the "
                "reference solution); implement the exercise with numpy only"
            )
        return None


def _isolate(limits, user):
    libc = ctypes.CDLL(None, use_errno=True)
    # No network: a fresh network namespace holds only a loopback that is down,
    # so hidden inputs cannot be sent anywhere (needs root; best effort).
    if os.geteuid() == 0:
        libc.unshare(_CLONE_NEWNET)
    # Hard limits (equal to the soft ones but for CPU time, where SIGXCPU comes
    # one second before SIGKILL): a process without CAP_SYS_RESOURCE
    # (the sandbox user, or root in most containers) cannot raise them again,
    # and every process the submission starts inherits them.
    for name, value in limits.items():
        soft, hard = value if isinstance(value, list) else (value, value)
        resource.setrlimit(getattr(resource, name), (soft, hard))
    # The sandbox user: its uid/gid, no supplementary groups (root's included).
    if user is not None:
        uid, gid = user
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    # No setuid binary (su, sudo, ...) may give the submission more rights.
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _hide_reference():
    # The child must not see the nflows_np source tree: drop any sys.path entry
    # that holds the package (site-packages stays, numpy lives there), and
    # refuse the import even if some finder could still locate it.
    sys.path[:] = [entry for entry in sys.path
                   if os.path.basename(entry) in ("site-packages", "dist-packages")
                   or not os.path.isdir(os.path.join(entry or ".", _REFUSED_PACKAGE))]
    for name in list(sys.modules):
        if name == _REFUSED_PACKAGE or name.startswith(_REFUSED_PACKAGE + "."):
            del sys.modules[name]
    sys.meta_path.insert(0, _RefuseReferenceImport())


def _describe(exc):
    """The exception as the student should see it: their frames, then the error."""
    here = os.path.abspath(__file__)
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if os.path.abspath(frame.filename) != here and frame.filename != "<grader>"]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames[-_MAX_FRAMES:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)[-_MAX_MESSAGE_CHARS:]


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    result_fd = config["result_fd"]
    _isolate(config["limits"], config["user"])
    _hide_reference()

    import numpy as np

    # Keep our own references: the submission may monkeypatch numpy afterwards.
    savez, to_array, frombuffer, float64 = np.savez, np.array, np.frombuffer, np.float64

    def send(arrays):
        buffer = io.BytesIO()
        savez(buffer, **arrays)
        _write_all(result_fd, buffer.getvalue())
        os.close(result_fd)

    def send_error(message):
        send({"__error__": frombuffer(message.encode("utf-8", "replace"), dtype=np.uint8)})

    stage = "loading the case inputs"
    try:
        with np.load(config["inputs"], allow_pickle=False) as archive:
            inputs = {key: archive[key] for key in archive.files}
        with open(config["driver"], encoding="utf-8") as handle:
            driver_source = handle.read()
        with open(config["submission"], encoding="utf-8") as handle:
            submission_source = handle.read()

        stage = "running your file"
        namespace = {"__name__": "submission", "__file__": config["submission_name"],
                     "__builtins__": __builtins__}
        exec(compile(submission_source, config["submission_name"], "exec"), namespace)

        stage = "calling your code"
        driver_namespace = {"np": np, "__name__": "grader_driver"}
        exec(compile(driver_source, "<grader>", "exec"), driver_namespace)
        outputs = driver_namespace["drive"](namespace, inputs)

        stage = "converting your results to arrays"
        arrays = {}
        for name, value in outputs.items():
            try:
                arrays[name] = to_array(value, dtype=float64, copy=True)
            except BaseException as exc:  # noqa: BLE001 - reported to the student
                raise TypeError(f"could not convert the result {name!r} "
                                f"({type(value).__name__}) to a float array: {exc}") from None
    except BaseException as exc:  # noqa: BLE001 - SystemExit, MemoryError, ... are all the student's
        send_error(f"error while {stage}:\n{_describe(exc)}")
    else:
        send(arrays)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a replaced or closed stream is not our problem
            pass
    # Leave now: no atexit handler or lingering thread of the submission runs.
    os._exit(0)


if __name__ == "__main__":
    main()
