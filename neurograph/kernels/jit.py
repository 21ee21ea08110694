"""numba settings shared by neurograph's compiled kernels.

Import ``numba`` through this module. It selects numba's ``workqueue``
threading layer before any parallel kernel runs: with the OpenMP layer,
numba's idle worker threads keep spinning after a kernel returns and make
every small torch operation that follows up to several hundred times slower
on a machine with few cores (measured: a 32 x 2 softmax from 13 us to 6 ms on
2 cores). ``workqueue`` threads sleep between kernels. Kernels are launched
from one thread at a time, which is all ``workqueue`` supports.
"""

from __future__ import annotations

import numba
import torch

__all__ = ["numba", "use_torch_threads"]

numba.config.THREADING_LAYER = "workqueue"


def use_torch_threads() -> int:
    """Give numba's parallel kernels the thread count torch is allowed; returns it."""
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != threads:
        numba.set_num_threads(threads)
    return threads
