"""GAN research template: Lightning + Hydra.

Importing the package registers the config resolvers (src/resolvers.py, which imports nothing heavy): every process
that reads a config imports it first, the CLIs and the workers of a sweep launcher that unpickle a job alike. A CLI's
Ctrl-C while it starts is one line, not a traceback (src/core/signals.py)."""

import time

IMPORTED_AT = time.perf_counter()  # where /proc can't say when the process started (src/run/summary.py)

from src.core.signals import quiet_ctrl_c_in_clis  # noqa: E402
from src.resolvers import register  # noqa: E402

quiet_ctrl_c_in_clis()
register()
