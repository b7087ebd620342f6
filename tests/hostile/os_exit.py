# Hostile: elementwise_log_det ends the process before the harness can answer.
import os


def elementwise_log_det(x, a):
    os._exit(0)
