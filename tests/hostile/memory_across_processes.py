# Hostile: elementwise_log_det forks 3 children that each hold 700 MiB at once
# (2.1 GiB, more than the 2 GiB a case may use) and reports whether they managed.
import os
import time

_honest_elementwise_log_det = elementwise_log_det  # noqa: F821 - from the solution above
_EACH = 700 * 2**20


def elementwise_log_det(x, a):
    reader, writer = os.pipe()
    children = []
    for _ in range(3):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            block = b"\1" * _EACH  # touched: really resident
            os.write(writer, b"k")
            time.sleep(1.5)
            os._exit(len(block) and 0)
        children.append(pid)
    os.close(writer)
    held = len(os.read(reader, 16)) if children else 0
    time.sleep(0.5)
    held = max(held, len(os.read(reader, 16)) if children else 0)
    if len(children) == 3:
        raise RuntimeError(f"ATTACK SUCCEEDED: 3 processes forked, {held} reported 700 MiB each")
    return _honest_elementwise_log_det(x, a)
