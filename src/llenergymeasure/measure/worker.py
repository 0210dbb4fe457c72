"""`python -m llenergymeasure.measure.worker OUT_DIR`: one data-parallel worker."""

from __future__ import annotations

import sys

from llenergymeasure.measure.distributed import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
