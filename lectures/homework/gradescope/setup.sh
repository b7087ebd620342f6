#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image
# (choose the Ubuntu 24.04 base image: Python 3.12).  The zip that build.sh
# writes puts the repository's library in /autograder/source.
set -euo pipefail

apt-get update
# python3-numpy: the interpreter that runs the submissions (only numpy importable there);
# bubblewrap: the sandbox each case runs in (the grader refuses to grade as root without it).
apt-get install -y --no-install-recommends python3 python3-venv python3-numpy bubblewrap

# The grader itself (nflows_np with scipy, nbformat, ...) in a venv of its own.
python3 -m venv /opt/nflows-grader
/opt/nflows-grader/bin/pip install --quiet -r /autograder/source/requirements.txt
# No account to create: each grading runs the submission as a fresh uid of its own.
