"""Where the ones of a 0/1 matrix are, as compressed rows (CSR index arrays), compiled by numba.

``torch.nonzero`` takes 0.1 ms for a 100 x 784 batch and 0.3 ms for the (784, 200) transpose the RBM's weight
gradient wants (one thread of an AMD EPYC), a third of what the sparse products themselves cost; one counting
pass and one filling pass here take 0.02 ms and 0.1 ms (with the transpose laid out by torch). Imported only
when a sparse product runs (numba loads in about half a second); the compiled code is cached on disk
(``cache=True``), so only a machine's first run compiles it.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def rows(mask):  # pragma: no cover - compiled
    """(column of each one, row by row; where each row's ones start, N + 1 of them) for a bool (N, K) array."""
    n, k = mask.shape
    offsets = np.zeros(n + 1, np.int64)
    for r in range(n):
        count = 0
        for c in range(k):
            count += mask[r, c]
        offsets[r + 1] = offsets[r] + count
    columns = np.empty(offsets[n], np.int64)
    at = 0
    for r in range(n):
        for c in range(k):
            if mask[r, c]:
                columns[at] = c
                at += 1
    return columns, offsets
