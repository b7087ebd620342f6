"""The program that runs ONE grading case, inside the sandbox (see :mod:`.isolation`).

The grader starts it as ``python -I harness.py CASE_DIR GRADING_ID`` with, in ``CASE_DIR``,
``case.json``, ``framing.py``, ``inputs.bin``, ``driver.py`` and
``submission.py``.  It is deliberately standalone (standard library and numpy
only), and nothing here is trusted by the grader: whatever comes back is only
data, parsed by the grader against the expected result.

Steps
-----
1. limit itself before any untrusted code runs: close every inherited file
   descriptor but stdin/stdout/stderr and the result pipe, hard resource
   limits, no privilege gain;
2. install an import hook that lets only the standard library and numpy be
   imported, as on every grading machine (so a score cannot depend on what
   else happens to be installed);
3. read the inputs (:mod:`framing`), run the submission in a fresh namespace,
   then the grader's driver, whose ``drive(namespace, inputs)`` returns a
   ``dict`` of arrays;
4. convert every output to a float64 ``ndarray`` and send them framed through
   the result pipe -- or the error message -- then leave at once (``os._exit``).
"""
import ctypes
import importlib.machinery
import importlib.util
import json
import os
import resource
import sys
import traceback

_PR_SET_NO_NEW_PRIVS = 38
_ALLOWED_PACKAGES = ("numpy",)
_MAX_MESSAGE_CHARS = 8000
_MAX_FRAMES = 8


class _OnlyStandardLibraryAndNumpy:
    """Meta-path finder refusing every module that is neither in the standard library nor numpy.

    A module is allowed where the interpreter's own path finder locates it in
    the standard library directory (not in a site-/dist-packages under it) or
    in numpy's package directory; built-in and frozen modules are allowed.
    """

    def __init__(self):
        numpy = importlib.machinery.PathFinder.find_spec("numpy")
        roots = [os.path.dirname(os.__file__)]
        if numpy is not None and numpy.origin:
            roots.append(os.path.dirname(numpy.origin))
        self.roots = tuple(os.path.join(root, "") for root in roots)

    def _allowed(self, origin):
        if not origin.startswith(self.roots):
            return False
        packages = ("site-packages", "dist-packages")
        return not any(part in packages for part in origin.split(os.sep)) or origin.startswith(self.roots[1:])

    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        top = name.partition(".")[0]
        if spec is None and (top in sys.stdlib_module_names or top in sys.builtin_module_names
                             or top == "numpy" or path is not None):
            return None  # a module that does not exist here: the usual ImportError
        if spec is not None and (spec.origin in (None, "built-in", "frozen") or self._allowed(spec.origin)):
            return None  # allowed: the usual finders do the rest
        raise ImportError(f"import of {name!r} refused by the grader: graded code may use the "
                          "Python standard library and numpy only (the same on every grading "
                          "machine); implement the exercise with numpy")


def _limit(limits, keep_fd):
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, 1 << 16)
    # Hard limits (equal to the soft ones but for CPU time, where SIGXCPU comes
    # one second before SIGKILL): an unprivileged process cannot raise them again.
    for name, value in limits.items():
        soft, hard = value if isinstance(value, list) else (value, value)
        resource.setrlimit(getattr(resource, name), (soft, hard))
    # No setuid binary (su, sudo, ...) may give the submission more rights.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


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


def _load_framing(case_dir):
    spec = importlib.util.spec_from_file_location("_grader_framing", os.path.join(case_dir, "framing.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path, binary=False):
    with open(path, "rb" if binary else "r", **({} if binary else {"encoding": "utf-8"})) as handle:
        return handle.read()


def main():
    case_dir = sys.argv[1]
    config = json.loads(_read(os.path.join(case_dir, "case.json")))
    result_fd = config["result_fd"]
    _limit(config["limits"], result_fd)
    sys.meta_path.insert(0, _OnlyStandardLibraryAndNumpy())
    framing = _load_framing(case_dir)

    import numpy as np

    # Keep our own references: the submission may monkeypatch numpy afterwards.
    encode, to_array, float64 = framing.encode, np.array, np.float64

    def send(arrays, error=None):
        _write_all(result_fd, encode(arrays, error))
        os.close(result_fd)

    stage = "loading the case inputs"
    try:
        inputs = framing.decode(_read(os.path.join(case_dir, "inputs.bin"), binary=True))
        driver_source = _read(os.path.join(case_dir, "driver.py"))
        submission_source = _read(os.path.join(case_dir, "submission.py"))

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
        for name in config["outputs"]:  # only what the grader reads; a missing one is reported there
            if name not in outputs:
                continue
            value = outputs[name]
            try:
                arrays[name] = to_array(value, dtype=float64, copy=True)
            except BaseException as exc:  # noqa: BLE001 - reported to the student
                raise TypeError(f"could not convert the result {name!r} "
                                f"({type(value).__name__}) to a float array: {exc}") from None
    except BaseException as exc:  # noqa: BLE001 - SystemExit, MemoryError, ... are all the student's
        send({}, f"error while {stage}:\n{_describe(exc)}")
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
