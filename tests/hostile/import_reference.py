# Hostile: elementwise_log_det imports the grader's reference; triangular_log_prob
# first removes the grader's import hook, then tries the same.
import sys


def elementwise_log_det(x, a):
    from nflows_np.grading.assignments import change_of_variables as reference
    return reference._elementwise({"x": x, "a": a})["log_det"]


def triangular_log_prob(x, a, c, alpha, beta):
    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if "Refuse" not in type(finder).__name__]
    from nflows_np.grading.assignments import change_of_variables as reference
    return reference._triangular({"x": x, "a": a, "c": c, "alpha": alpha, "beta": beta})["log_prob"]
