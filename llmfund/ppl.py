r"""Negative log-likelihood and perplexity: how surprised a model is by the tokens that came next.

At each position the logits define a distribution $p(\cdot \mid \text{context})$ over the
vocabulary; the negative log-likelihood (NLL) of the token that actually came next is
$-\log p(y_t)$, in nats. Perplexity (PPL) is $\exp$ of the mean NLL: the size of a uniform
vocabulary that would be just as surprised. Guessing uniformly over V tokens gives PPL V; a model
that is always sure and right gives PPL 1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._checks import float_array, float_dtype, index_array, numeric_array

# Rows of logits are scored a chunk at a time, about this many elements (2 MiB of float32), so the
# exp temporary stays in cache and memory never holds a second (..., t, vocab) array.
_CHUNK_ELEMENTS = 2**19


def sequence_nll(logits: ArrayLike, labels: ArrayLike) -> np.ndarray:
    r"""Per-token negative log-likelihood (natural log) of ``labels`` under ``logits``.

    Parameters
    ----------
    logits : array_like, shape (..., t, vocab)
        Unnormalised scores; row ``[..., i, :]`` is the model's prediction for ``labels[..., i]``
        (shift by one yourself: the logits at position i predict the token at i + 1).
        ``-inf`` is allowed (a token the model rules out).
    labels : array_like of int, shape (..., t)
        The tokens that came, in ``[0, vocab)``; ``labels.shape`` must equal ``logits.shape[:-1]``.

    Returns
    -------
    ndarray, shape (..., t)
        $-\log p(\text{label})$ per token, >= 0. float64 for float64 logits, float32 for float32
        and float16 (computed in float32). A label on a ``-inf`` logit has probability 0 and NLL
        ``inf``.

    Raises
    ------
    ValueError
        If ``logits`` is a scalar, has an empty vocabulary, contains NaN or ``+inf``, or has a row
        that is all ``-inf``; if a label is negative or >= vocab; if the shapes do not match.
    TypeError
        If ``labels`` does not have an integer dtype, or ``logits`` is not an array of real numbers.

    Notes
    -----
    $\text{nll}_t = \log \sum_j e^{z_{t,j}} - z_{t,y_t}$, with the log-sum-exp computed stably as
    $m + \log \sum_j e^{z_{t,j} - m}$, $m = \max_j z_{t,j}$, so no exp overflows. This is the
    cross-entropy of the one-hot label, and equals PyTorch's
    ``torch.nn.functional.cross_entropy(logits, labels, reduction="none")``.

    Memory: rows are processed a chunk at a time (about 2**19 elements), so beyond the input the
    peak extra memory is one chunk of rows, not a second (..., t, vocab) array; the NaN and
    ``+inf`` checks ride on each chunk's row maxima. (A layout that ``reshape(-1, vocab)`` cannot
    view, such as a transposed array, is copied once.)

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import sequence_nll
    >>> logits = np.log([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    >>> print(np.round(sequence_nll(logits, [0, 2]), 4))
    [0.6931 0.2231]
    """
    x = numeric_array(logits, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have a vocabulary axis, got a scalar")
    vocab = x.shape[-1]
    if vocab == 0:
        raise ValueError("logits has an empty vocabulary (last axis has length 0)")
    y = index_array(labels, "labels", upper=vocab)
    if y.shape != x.shape[:-1]:
        raise ValueError(
            f"labels must have shape logits.shape[:-1] = {x.shape[:-1]}, got {y.shape}"
        )
    dtype = float_dtype(x)
    rows, ids = x.reshape(-1, vocab), y.reshape(-1)
    nll = np.empty(rows.shape[0], dtype=dtype)
    step = max(1, _CHUNK_ELEMENTS // vocab)
    buffer = np.empty((min(step, rows.shape[0]), vocab), dtype=dtype)
    for start in range(0, rows.shape[0], step):
        chunk = rows[start : start + step].astype(dtype, copy=False)
        nll[start : start + step] = _chunk_nll(chunk, ids[start : start + step], buffer)
    return nll.reshape(y.shape)


def ppl_from_nll(nll: ArrayLike) -> float:
    r"""Perplexity from per-token NLLs: ``exp(mean(nll))``.

    Parameters
    ----------
    nll : array_like, any shape
        Per-token negative log-likelihoods in nats, each >= 0 (``inf`` allowed), at least one.

    Returns
    -------
    float
        $\exp(\frac{1}{N}\sum_t \text{nll}_t)$, >= 1; ``inf`` if any NLL is ``inf`` or the
        mean is too large to exponentiate.

    Raises
    ------
    ValueError
        If ``nll`` is empty, contains NaN, or contains a negative value (the NLL of a discrete
        distribution is >= 0: a negative one means the input is not an NLL).
    TypeError
        If ``nll`` is not an array of real numbers.

    Notes
    -----
    $\text{PPL} = \exp(\bar{\text{nll}})$: the geometric mean of $1 / p(y_t)$, so it is the
    NLLs that are averaged, not per-token perplexities. The mean is taken in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import ppl_from_nll
    >>> print(round(ppl_from_nll([np.log(4.0), np.log(4.0)]), 4))
    4.0
    >>> print(round(ppl_from_nll([0.0, np.log(4.0)]), 4))
    2.0
    """
    a = float_array(nll, "nll")
    if a.size == 0:
        raise ValueError("nll is empty: perplexity needs at least one token")
    lowest = float(a.min())
    if lowest < 0:
        raise ValueError(f"nll must be >= 0 (the NLL of a discrete distribution), got {lowest}")
    with np.errstate(over="ignore"):  # a huge mean NLL is a perplexity of inf, not an error
        return float(np.exp(a.mean(dtype=np.float64)))


def ppl_from_logits(logits: ArrayLike, labels: ArrayLike) -> float:
    r"""Perplexity of ``labels`` under ``logits``: ``ppl_from_nll(sequence_nll(logits, labels))``.

    Parameters
    ----------
    logits : array_like, shape (..., t, vocab)
        Unnormalised scores, as in :func:`sequence_nll`.
    labels : array_like of int, shape (..., t)
        The tokens that came, at least one.

    Returns
    -------
    float
        The perplexity over every token of every sequence, >= 1.

    Raises
    ------
    ValueError
        As :func:`sequence_nll`, and if ``labels`` is empty.
    TypeError
        As :func:`sequence_nll`.

    Notes
    -----
    $\text{PPL} = \exp\big(\frac{1}{N} \sum_t -\log p(y_t)\big)$ over all $N$ tokens (a batch is
    pooled, not averaged per sequence). Uniform logits over V tokens give exactly V.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import ppl_from_logits
    >>> print(round(ppl_from_logits(np.zeros((2, 5, 50)), np.zeros((2, 5), dtype=int)), 4))
    50.0
    """
    nll = sequence_nll(logits, labels)
    if nll.size == 0:
        raise ValueError("labels is empty: perplexity needs at least one token")
    return ppl_from_nll(nll)


def _chunk_nll(chunk, labels, buffer):
    """NLL of each row of ``chunk`` (r, vocab), with ``buffer`` (>= r, vocab) as scratch."""
    top = chunk.max(axis=-1)  # NaN propagates through max, +inf and an all -inf row show in it
    if np.isnan(top).any():
        raise ValueError("logits contains NaN")
    if np.isposinf(top).any():
        raise ValueError("logits contains +inf")
    if np.isneginf(top).any():
        raise ValueError("logits has a row that is all -inf: it is no distribution")
    shifted = np.subtract(chunk, top[:, None], out=buffer[: chunk.shape[0]])
    log_z = top + np.log(np.exp(shifted, out=shifted).sum(axis=-1))
    return log_z - chunk[np.arange(chunk.shape[0]), labels]
