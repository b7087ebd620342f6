"""The grading report: readable text for stdout, and Gradescope's ``results.json``.

``results.json`` follows Gradescope's autograder specification: top-level
``score``, ``execution_time``, ``output`` and ``tests``; each test has
``name``, ``score``, ``max_score``, ``status`` (``"passed"``/``"failed"``),
``output`` and ``visibility`` (``"after_due_date"`` for hidden cases).
"""
from __future__ import annotations

import json
import os
import resource
import tempfile
import textwrap
import unicodedata

from nflows_np.grading.runner import GradeResult

_KEPT = frozenset("\n\t")


def _escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def sanitize(text: str) -> str:
    """``text`` with every control or format character but newline and tab written as an escape.

    ANSI sequences, carriage returns, backspaces, bells and bidirectional
    overrides in anything a submission controls (its output, file name,
    exception text) then show as text (``\\x1b[2J``) instead of acting on
    the terminal or the web page that displays the report.
    """
    return "".join(_escape_char(char) if char not in _KEPT and
                   unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
                   else char for char in text)


def _summary(result: GradeResult) -> str:
    lines = []
    title = f" ({result.title})" if result.title else ""
    lines.append(f"Assignment {result.assignment or '?'}{title}: "
                 f"{result.score:g} / {result.max_score:g} points")
    if result.error:
        lines.append(f"GRADING FAILED: {result.error}")
    if result.seed is not None:
        lines.append(f"inputs seed {result.seed} (grade again with --seed {result.seed} "
                     "to reproduce these inputs)")
    lines.extend(result.notes)
    return sanitize("\n".join(lines))


def format_text(result: GradeResult) -> str:
    """The report as plain text, one block per case."""
    blocks = [_summary(result), ""]
    for test in result.tests:
        mark = "PASS" if test.passed else "FAIL"
        hidden = "  [hidden]" if test.hidden else ""
        blocks.append(sanitize(f"[{mark}] {test.score:5.2f} / {test.max_score:<5g} {test.name}{hidden}"))
        blocks.append(textwrap.indent(sanitize(test.feedback), "        "))
    blocks.append(f"\ngraded in {result.execution_time:.2f} s")
    return "\n".join(blocks) + "\n"


def gradescope_dict(result: GradeResult) -> dict:
    """``results.json`` content as a dict (see the module docstring)."""
    return {
        "score": result.score,
        "execution_time": result.execution_time,
        "output": _summary(result),
        "tests": [
            {
                "name": sanitize(test.name),
                "score": 0.0 if result.error else test.score,
                "max_score": float(test.max_score),
                "status": "passed" if test.passed and not result.error else "failed",
                "output": sanitize(test.feedback),
                "visibility": "after_due_date" if test.hidden else "visible",
            }
            for test in result.tests
        ],
        "extra_data": {"assignment": result.assignment, "seed": result.seed,
                       "max_score": result.max_score, "interrupted": result.interrupted,
                       "grading_id": result.grading_id,
                       "grader_peak_rss_mib": peak_rss_mib()},
    }


def peak_rss_mib() -> float:
    """The grader's own peak resident memory in MiB, cases excluded (they run in other processes).

    Read from VmHWM in /proc/self/status, the high-water mark of this process's memory
    since its exec; ``ru_maxrss`` would also count the parent's memory at fork time (Linux
    keeps it across exec), so a grader started from a large process would look large.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # the value is in kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # ru_maxrss is in KiB on Linux


def write_json_atomic(path: str, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically.

    The text goes to a temporary file in the same directory, is flushed to
    disk, then renamed over ``path`` with ``os.replace``: a reader sees the
    old file or the complete new one, never a half-written file, and a
    symbolic link planted at ``path`` is replaced, not followed.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temp_path = tempfile.mkstemp(dir=directory, prefix=".results.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, 0o644)
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise
