"""Split n items into k contiguous parts (sampling jobs). Pure Python: the Snakefile imports it."""

from __future__ import annotations


def partition(n: int, i: int, k: int) -> range:
    """Indices of part ``i`` of ``k``: contiguous, sizes differ by at most one, all parts cover 0..n-1 once.

    Boundaries are ``floor(j * n / k)``, so parts are balanced even when k does not divide n
    (and some parts are empty when k > n).
    """
    for name, value in (("n", n), ("i", i), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"partition: {name} must be an integer, got {value!r}")
    if n < 0:
        raise ValueError(f"partition: n must be >= 0, got {n}")
    if k < 1:
        raise ValueError(f"partition: k (number of partitions) must be >= 1, got {k}")
    if not 0 <= i < k:
        raise ValueError(f"partition: i must be in 0..{k - 1}, got {i}")
    return range(i * n // k, (i + 1) * n // k)
