"""``python -m nflows_np``: see :mod:`nflows_np.cli`."""
import sys

from nflows_np.cli import main

sys.exit(main())
