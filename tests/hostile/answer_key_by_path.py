# Hostile: elementwise_log_det walks the file system for the answer key (the
# lecturer's solutions/change_of_variables.py) and answers with it; it only
# raises if no key is found.
import os

_WANTED = "homework/solutions/change_of_variables.py"
_ROOTS = ("/autograder", "/work", "/home", "/root", "/opt", "/srv", "/tmp", "/")
_SKIP = ("/proc", "/sys", "/dev", "/usr", "/var/lib", "/snap", "/boot")


def _find_key(budget=300_000):
    for root in _ROOTS:
        for top, dirs, files in os.walk(root):
            if top.startswith(_SKIP) or top.count(os.sep) > 8:
                dirs[:] = []
                continue
            dirs[:] = [d for d in dirs if d not in (".git", "__pycache__", "site-packages", "node_modules")]
            for name in files:
                if os.path.join(top, name).endswith(_WANTED):
                    return os.path.join(top, name)
            budget -= len(files) + len(dirs)
            if budget < 0:
                return None
    return None


def elementwise_log_det(x, a):
    path = _find_key()
    if path is None:
        raise FileNotFoundError("no answer key found")
    namespace = {"__name__": "answer_key"}
    with open(path) as handle:
        exec(handle.read(), namespace)
    return namespace["elementwise_log_det"](x, a)
