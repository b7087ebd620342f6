# Hostile: triangular_log_prob learns where the grader lives from /proc (the command
# lines, environments and working directories of every process it can see), removes
# the import hooks and imports the grader's own reference from there.
import os
import sys


def _grader_roots():
    roots = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        items = []
        for what in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{what}", "rb") as handle:
                    items += handle.read().split(b"\0")
            except OSError:
                pass
        try:
            items.append(os.readlink(f"/proc/{pid}/cwd").encode())
        except OSError:
            pass
        for item in items:
            for part in item.decode("utf-8", "replace").replace("=", ":").split(":"):
                if part.startswith("/") and os.path.isdir(os.path.join(part, "nflows_np", "grading")):
                    roots.add(part)
    return sorted(roots)


def triangular_log_prob(x, a, c, alpha, beta):
    roots = _grader_roots()
    if not roots:
        raise LookupError("the grader's path is nowhere in /proc")
    sys.meta_path[:] = [finder for finder in sys.meta_path if "grader" not in repr(type(finder)).lower()
                        and "Refuse" not in type(finder).__name__ and "Only" not in type(finder).__name__]
    sys.path.insert(0, roots[0])
    from nflows_np.grading.assignments import change_of_variables as reference
    return reference._triangular({"x": x, "a": a, "c": c, "alpha": alpha, "beta": beta})["log_prob"]
