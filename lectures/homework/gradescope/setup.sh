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

# A dedicated account without privileges runs bubblewrap and the submissions inside it.
id nflows-sandbox >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nflows-sandbox
