# Hostile: elementwise_log_det never returns.


def elementwise_log_det(x, a):
    while True:
        pass
