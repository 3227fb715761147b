"""Settings for every test folder (tests/ and plugins/*/tests), read before any test module imports torch."""

import os

# Under pytest-xdist each worker is one process on a shared machine: one math thread per worker, so
# N workers do not oversubscribe N cores (torch, OpenMP, MKL and OpenBLAS read these when imported;
# the harness' job processes inherit them). A variable already set by the user wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
