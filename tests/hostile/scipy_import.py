# Hostile (or just careless): elementwise_log_det uses scipy, which the grading
# machine does not provide; the score must not depend on where it is graded.
def elementwise_log_det(x, a):
    from scipy.special import log1p
    return log1p(a * (1.0 - __import__("numpy").tanh(x) ** 2)).sum(axis=1)
