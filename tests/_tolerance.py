"""Float32 tolerances from error bounds, never from what passed on one CPU.

A float32 sum of n terms is within (n − 1)·eps32·Σ|terms| of the exact sum whatever the order of the
additions (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2); each elementwise operation
(exp, log, a product, a quotient) adds one rounding, eps32/2 relative. The order differs between CPUs (SIMD
width, vectorised or pairwise reductions, FMA contraction), XLA versions and jit versus eager, so two float32
computations of the same quantity can differ by twice the bound. Tests therefore compare float32 results with

    tol = 4 · n · eps32 · scale,

n being the number of rounded terms and operations on the longest path (the length of the reduction plus a
few elementwise steps and the rounding of float64 inputs), and scale the sum of the magnitudes of the
terms — or the magnitude of the result itself, as an ``rtol``, when all terms have one sign. Every call
site states its n and scale in a comment.
"""

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 2**-23 = 1.19e-7


def f32_tol(n: int, scale=1.0):
    """4·n·eps32·scale: twice the worst-case float32 error of ``n`` rounded terms of total size ``scale``
    (a float, or an array of per-element scales)."""
    tol = 4.0 * n * EPS32 * np.asarray(scale, np.float64)
    return float(tol) if tol.ndim == 0 else tol


#: A float64 result stored as float32 is rounded once: within eps32/2 relative (4·eps32 leaves room). Compare
#: it with ``rtol=STORED_F32, atol=FLOAT64_NOISE`` (the float64 round-off of the two computations).
STORED_F32 = f32_tol(1)
FLOAT64_NOISE = 1e-12


def assert_within(actual, expected, tol, what: str = "") -> None:
    """``|actual − expected| ≤ tol`` elementwise; ``tol`` may be an array (per-element bounds), which
    `numpy.testing.assert_allclose` cannot print."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.ndim and e.ndim and a.shape != e.shape:
        raise AssertionError(f"{what + ': ' if what else ''}shapes differ: {a.shape} and {e.shape}")
    tol = np.broadcast_to(np.asarray(tol, np.float64), np.broadcast_shapes(a.shape, e.shape))
    err = np.abs(a - e)
    bad = ~(err <= tol)
    if np.any(bad):
        i = np.unravel_index(np.argmax(np.where(bad, err - tol, -np.inf)), bad.shape) if bad.ndim else ()
        raise AssertionError(
            f"{what + ': ' if what else ''}{int(bad.sum())} of {bad.size} elements off by more than their "
            f"bound; worst at {i}: got {a[i] if a.ndim else a}, expected {e[i] if e.ndim else e}, "
            f"error {err[i]:.3g} > bound {tol[i]:.3g}"
        )
