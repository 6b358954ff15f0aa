"""Input checks shared by every public function.

One place decides how bad input fails, so that every function in the package fails the same
way: a ``TypeError`` for the wrong kind of thing, a ``ValueError`` for the right kind with a bad
value, and the message always names the parameter and the value it got.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def float_array(x: Any, name: str, *, min_ndim: int = 0, allow_inf: bool = True) -> np.ndarray:
    """Return ``x`` as a floating array without modifying the caller's data.

    float64 stays float64 and float32 stays float32; float16 (and bfloat-like low precision)
    is computed in float32 because its 10-bit mantissa cannot hold a softmax sum; integers and
    bools become float64. NaN is always an error: a NaN logit or activation means something
    upstream already went wrong, and silently propagating it is the worst possible answer.
    """
    arr = numeric_array(x, name)
    arr = arr.astype(float_dtype(arr), copy=False)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if arr.size and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if not allow_inf and arr.size and np.isinf(arr).any():
        raise ValueError(f"{name} must be finite, got an infinite value")
    return arr


def numeric_array(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)``, refusing anything but an array of real numbers (no conversion)."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise TypeError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    return arr


def float_dtype(arr: np.ndarray) -> np.dtype:
    """The floating dtype ``float_array`` computes ``arr`` in (for code converting in pieces).

    float64 and float32 stay; float16 and other low precision go to float32; integers and
    bools go to float64.
    """
    if arr.dtype == np.float64 or arr.dtype == np.float32:
        return arr.dtype
    if np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize < 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def logits_array(x: Any, name: str = "logits") -> np.ndarray:
    """Logits over the last axis: at least 1-D, a non-empty vocabulary, no NaN, no +inf.

    ``-inf`` is allowed (it is how a filter removes a token); ``+inf`` is not, because it has no
    probability (inf - inf is NaN in every softmax).
    """
    arr = float_array(x, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a vocabulary axis, got a scalar")
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} has an empty vocabulary (last axis has length 0)")
    if arr.size and np.isposinf(arr).any():
        raise ValueError(f"{name} contains +inf")
    return arr


def integer(value: Any, name: str, *, minimum: int | None = None) -> int:
    """A Python ``int`` from an integer (NumPy integers too; bools and floats are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def real(value: Any, name: str) -> float:
    """A Python ``float`` from a real number that is not NaN (bools are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if np.isnan(value):
        raise ValueError(f"{name} must not be NaN, got {value}")
    return value


def index_array(x: Any, name: str, *, upper: int | None = None) -> np.ndarray:
    """Token ids: an integer array with every id in ``[0, upper)``."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {arr.dtype}")
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0:
            raise ValueError(f"{name} must be >= 0, got {low}")
        if upper is not None and high >= upper:
            raise ValueError(f"{name} must be < {upper} (the vocabulary size), got {high}")
    return arr


def bool_mask(mask: Any, name: str = "mask") -> np.ndarray:
    """A boolean mask (True = keep). Numbers are refused so that 0/1 and additive masks are not confused."""
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array (True = may attend), got dtype {arr.dtype}")
    return arr


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """The floating dtype a computation over ``arrays`` runs in (float32 only if all are float32)."""
    return np.result_type(*[a.dtype for a in arrays])


def kv_array(x: Any, name: str) -> np.ndarray:
    """Keys or values for a cache, shape (..., t_new, dim) with t_new >= 1, no NaN.

    Unlike :func:`float_array`, a floating dtype is kept as it is: a float16 cache that came
    back float32 would lose the very memory it exists to save. Other numbers become float64.
    """
    arr = numeric_array(x, name)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN")
    else:
        arr = float_array(arr, name)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (..., t_new, dim), got shape {arr.shape}")
    if arr.shape[-2] == 0:
        raise ValueError(f"{name} must add at least one token, got shape {arr.shape}")
    return arr
