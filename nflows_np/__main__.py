"""``python -m nflows_np``: see :mod:`nflows_np.cli`."""
import os
import sys

# Small matrix products (batch × 64): one BLAS thread is faster than several and is
# immune to a loaded machine (benchmarks/speed.py). Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from nflows_np.cli import main  # noqa: E402

sys.exit(main())
