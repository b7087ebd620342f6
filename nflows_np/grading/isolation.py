"""The isolation boundary: one bubblewrap sandbox per case (Linux namespaces + seccomp).

Each case runs ``bwrap`` (https://github.com/containers/bubblewrap, the tool
Flatpak uses) as the unprivileged sandbox user, in new user, mount, PID, IPC,
UTS, cgroup and network namespaces.  Inside, the submission sees

* read-only: the system directories the interpreter needs (``/usr``, the
  ``/lib*`` links, the dynamic linker's cache) with every ``site-packages`` /
  ``dist-packages`` directory replaced by an empty one holding numpy only;
* read-only ``/case``: the harness, the driver, the submission and the
  inputs, copied in from memory (:func:`os.memfd_create`), so no host path of
  the grader is mounted, named or readable;
* private, size-limited, empty ``/tmp`` (its working directory) and
  ``/dev/shm``; a minimal ``/dev``; its own ``/proc`` (only its own
  processes); no network (a down loopback); no environment of the grader's;
* a seccomp filter that refuses process creation (``fork``, ``vfork``,
  ``clone`` without ``CLONE_THREAD``): the case is one process, so the
  harness's ``RLIMIT_AS`` bounds the memory of the whole case; threads share it.

Killing the namespace's first process (``--info-fd`` gives its pid) makes the
kernel kill every other process of the case, whatever its state, and nothing
the case wrote survives it: its files lived in its own ``tmpfs`` mounts.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import struct
import subprocess
from dataclasses import dataclass

CASE_DIR = "/case"            # the case's read-only files, inside the sandbox
WORK_DIR = "/tmp"             # the submission's working directory, inside the sandbox
TMP_BYTES = 64 * 2**20        # size of the private /tmp
SHM_BYTES = 16 * 2**20        # size of the private /dev/shm
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_LINKER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives")

# ---- seccomp: no new processes ----------------------------------------------------------------
# Classic BPF over struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];}.
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL = 0x7FFF0000, 0x80000000
_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38
_CLONE_THREAD = 0x00010000
# arch -> (AUDIT_ARCH value, clone, clone3, fork syscalls refused outright)
_ARCHES = {
    "x86_64": (0xC000003E, 56, 435, (57, 58)),   # fork, vfork
    "aarch64": (0xC00000B7, 220, 435, ()),
}


def seccomp_filter(machine: str | None = None) -> bytes:
    """BPF program refusing ``fork``/``vfork``/process ``clone`` (EPERM) and ``clone3`` (ENOSYS).

    ``clone3`` cannot be inspected by BPF (its flags are behind a pointer), so
    it reports "not implemented" and the C library falls back to ``clone``,
    whose flags are checked: threads (``CLONE_THREAD``) are allowed.  Any
    other architecture, and x32 system calls, are refused.

    Raises
    ------
    OSError
        On an architecture without a filter here.
    """
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise OSError(f"no seccomp filter for the {machine} architecture")
    audit_arch, clone, clone3, forks = _ARCHES[machine]
    # (code, jump-if-true target label, jump-if-false target label, k); labels resolved below.
    program: list[tuple[int, str | int, str | int, int]] = [
        (_LD_W_ABS, 0, 0, 4),                     # A = arch
        (_JEQ, 0, "kill", audit_arch),
        (_LD_W_ABS, 0, 0, 0),                     # A = syscall number
        (_JGE, "enosys", 0, 0x40000000),          # x32 ABI
        (_JEQ, "enosys", 0, clone3),
        *[(_JEQ, "eperm", 0, number) for number in forks],
        (_JEQ, 0, "allow", clone),
        (_LD_W_ABS, 0, 0, 16),                    # A = low 32 bits of clone's flags
        (_JSET, "allow", "eperm", _CLONE_THREAD),
    ]
    labels = {"allow": _ALLOW, "eperm": _ERRNO | _EPERM, "enosys": _ERRNO | _ENOSYS, "kill": _KILL}
    ends = {name: len(program) + index for index, name in enumerate(labels)}
    raw = b""
    for index, (code, true, false, k) in enumerate(program):
        jt = ends[true] - index - 1 if isinstance(true, str) else true
        jf = ends[false] - index - 1 if isinstance(false, str) else false
        raw += struct.pack("=HBBI", code, jt, jf, k)
    for name in labels:
        raw += struct.pack("=HBBI", _RET, 0, 0, labels[name])
    return raw


# ---- the interpreter, seen from inside ----------------------------------------------------------

_PROBE = ("import json, os, sys, numpy; print(json.dumps({'executable': sys.executable, "
          "'path': sys.path, 'numpy': os.path.dirname(os.path.realpath(numpy.__file__)), "
          "'prefixes': [sys.prefix, sys.base_prefix]}))")


@dataclass(frozen=True)
class Interpreter:
    """What the sandbox must show of a Python interpreter: its files, and numpy only."""

    executable: str
    prefixes: tuple[str, ...]       # installation trees outside the system dirs (venv, pyenv)
    package_dirs: tuple[str, ...]   # site-/dist-packages on sys.path: masked by an empty tmpfs
    numpy_dirs: tuple[str, ...]     # numpy and its vendored libraries, bound back into one of them


@functools.lru_cache(maxsize=8)
def probe_interpreter(python: str, user: tuple[int, int] | None) -> Interpreter:
    """Ask ``python`` (run as ``user``) where it lives and where numpy is.

    Raises
    ------
    OSError
        If it cannot run or has no numpy.
    """
    who = {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
    try:
        probe = subprocess.run([python, "-I", "-c", _PROBE], capture_output=True, text=True,
                               cwd="/", env={"PATH": "/usr/bin:/bin"}, timeout=60, **who)
        info = json.loads(probe.stdout) if probe.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise OSError(f"cannot run {python}: {exc}") from None
    if info is None:
        raise OSError(f"{python} cannot import numpy")
    system = tuple("/" + name for name in _SYSTEM_DIRS)
    prefixes = tuple(sorted({os.path.realpath(p) for p in info["prefixes"]
                             if not os.path.realpath(p).startswith(system)}))
    packages = tuple(entry for entry in info["path"] if os.path.basename(entry) in
                     ("site-packages", "dist-packages") and os.path.isdir(entry))
    parent = os.path.dirname(info["numpy"])
    numpy_dirs = tuple(os.path.join(parent, name) for name in sorted(os.listdir(parent))
                       if name == "numpy" or name.startswith("numpy.libs"))
    return Interpreter(info["executable"], prefixes, packages, numpy_dirs)


def find_bwrap() -> str | None:
    """Path of the ``bwrap`` program, or ``None``."""
    return shutil.which("bwrap")


def _system_mounts() -> list[str]:
    args: list[str] = []
    for name in _SYSTEM_DIRS:
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _LINKER_FILES:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def _python_mounts(interpreter: Interpreter) -> list[str]:
    args: list[str] = []
    for prefix in interpreter.prefixes:
        args += ["--ro-bind", prefix, prefix]
    for directory in interpreter.package_dirs:
        args += ["--tmpfs", directory]
    for source in interpreter.numpy_dirs:
        args += ["--ro-bind", source, source]
    for directory in interpreter.package_dirs:
        args += ["--remount-ro", directory]
    return args


def bwrap_command(bwrap: str, interpreter: Interpreter, files: dict[str, int], seccomp_fd: int,
                  info_fd: int, env: dict[str, str], argv: list[str]) -> list[str]:
    """The ``bwrap`` command line of one case.

    Parameters
    ----------
    files : dict
        ``{name: fd}``: each fd's content becomes the read-only ``/case/<name>``.
    seccomp_fd, info_fd : int
        The compiled :func:`seccomp_filter`, and where bwrap writes the pid of
        the namespace's first process (JSON ``child-pid``).
    env : dict
        The whole environment of the child.
    argv : list of str
        The command run inside (paths as seen inside).
    """
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--hostname", "sandbox", "--clearenv",
            *_system_mounts(), *_python_mounts(interpreter),
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
            "--size", str(TMP_BYTES), "--tmpfs", WORK_DIR,
            "--dir", CASE_DIR]
    for name, fd in files.items():
        args += ["--ro-bind-data", str(fd), f"{CASE_DIR}/{name}"]
    args += ["--remount-ro", "/", "--chdir", WORK_DIR, "--seccomp", str(seccomp_fd),
             "--info-fd", str(info_fd)]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, "--", *argv]


def memory_file(name: str, data: bytes) -> int:
    """A sealed-size anonymous file holding ``data``, positioned at its start (an fd)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@functools.lru_cache(maxsize=8)
def check_bwrap(bwrap: str, user: tuple[int, int] | None) -> str:
    """"" if ``bwrap`` can create the sandbox's namespaces as ``user``, else why not (one line)."""
    who = {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
    command = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
               *_system_mounts(), "--proc", "/proc", "--dev", "/dev", "--", "/bin/true"]
    try:
        probe = subprocess.run(command, capture_output=True, text=True, cwd="/", env={}, timeout=60, **who)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    lines = (probe.stderr or "").strip().splitlines()
    return "" if probe.returncode == 0 else (lines[-1] if lines else f"exit status {probe.returncode}")
