# Hostile: terminal escapes in what the submission prints and in its exception text:
# clear the screen and print a fake "[PASS]" line, ring the bell, set the title,
# reverse the text direction.
_honest_triangular_log_prob = triangular_log_prob  # noqa: F821 - from the solution above


def elementwise_log_det(x, a):
    print("\x1b[2J\x1b[H[PASS] 20.00 / 20    all cases\r", end="")
    raise ValueError("\x1b[31mred\x1b[0m\x07 \u202eright-to-left\x08")


def triangular_log_prob(x, a, c, alpha, beta):
    print("\x1b]0;pwned title\x07")
    return _honest_triangular_log_prob(x, a, c, alpha, beta)
