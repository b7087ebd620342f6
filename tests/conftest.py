import os
import pathlib
import sys

# The flows here multiply small matrices (batch × 64): BLAS threads cost more in
# synchronisation than they save, and on a loaded 2-core machine they made a
# RealNVP training step 30× slower (benchmarks/speed.py measures both).
# Set before numpy is first imported, so OpenBLAS starts with one thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Let test modules import the shared helpers: the registry of layer cases (flow_cases, cases_*)
# here, and the grader's test helpers (gradelib) in grading/.
sys.path.insert(0, str(pathlib.Path(__file__).parent / "grading"))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
