r"""Decoding one token: temperature, top-k, top-p (nucleus), min-p and repetition penalty.

A language model scores every vocabulary token with a logit; decoding turns a row of logits into
one token id. Each filter is one small step over the last axis that returns new logits with the
removed tokens at ``-inf``, like a Hugging Face logits processor, so the steps compose. ``sample``
chains them in Hugging Face's order (temperature, top-k, top-p, min-p) and draws from the rest,
working on the few candidates that can survive rather than sorting the whole vocabulary.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike

from ._checks import index_array, integer, logits_array, real

# The top-p candidate search buckets tokens by how far (in nats) their logit is below the top one:
# quarter-nat buckets, the last one holding everything 32 nats or more below (_nucleus_candidates).
_BUCKETS_PER_NAT = 4
_BUCKETS = 128


def apply_temperature(logits: ArrayLike, temperature: float) -> np.ndarray:
    r"""Divide the logits by a temperature: below 1 sharpens the distribution, above 1 flattens it.

    Parameters
    ----------
    logits : array_like, shape (..., vocab)
        Unnormalised scores; ``-inf`` marks a token that is already removed.
    temperature : float
        A finite number > 0.

    Returns
    -------
    ndarray, shape (..., vocab)
        ``logits / temperature`` as a new array: float64 stays float64, float32 stays float32,
        float16 is computed and returned in float32.

    Raises
    ------
    ValueError
        If ``temperature`` is 0 (greedy decoding is ``sample(logits, temperature=0)``), negative,
        infinite or NaN; if ``logits / temperature`` overflows; if ``logits`` is a scalar, has an
        empty vocabulary or contains NaN or ``+inf``.
    TypeError
        If ``temperature`` is not a real number or ``logits`` is not an array of numbers.

    Notes
    -----
    $p_i = \exp(z_i / T) / \sum_j \exp(z_j / T)$: as $T \to 0$ all the mass goes to the argmax,
    as $T \to \infty$ it spreads evenly; $T = 1$ leaves the model's distribution unchanged.
    Matches Hugging Face transformers' ``TemperatureLogitsWarper`` (``scores / temperature`` in
    the logits' dtype), bit for bit in float32.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import apply_temperature
    >>> print(apply_temperature([2.0, 1.0, -np.inf], 0.5))
    [  4.   2. -inf]
    """
    x = logits_array(logits)
    return _divide(x, _temperature(temperature, allow_zero=False))


def top_k_filter(logits: ArrayLike, k: int) -> np.ndarray:
    r"""Keep the ``k`` largest logits of each row, ties with the k-th too; the rest become -inf.

    Parameters
    ----------
    logits : array_like, shape (..., vocab)
        Unnormalised scores; ``-inf`` marks a token that is already removed.
    k : int
        How many tokens to keep, >= 1. ``k >= vocab`` keeps every token.

    Returns
    -------
    ndarray, shape (..., vocab)
        A new array: the kept logits unchanged, the others ``-inf`` (dtype as in
        :func:`apply_temperature`).

    Raises
    ------
    ValueError
        If ``k < 1``, or ``logits`` is a scalar, has an empty vocabulary or contains NaN or
        ``+inf``.
    TypeError
        If ``k`` is not an integer (a bool or a float is refused).

    Notes
    -----
    A token is kept iff $z_i \ge z_{(k)}$, the k-th largest logit of its row (Fan et al. 2018,
    *Hierarchical Neural Story Generation*). Every token tied with the k-th is kept, so a row can
    keep more than ``k``. Matches Hugging Face transformers' ``TopKLogitsWarper``
    (``scores < topk(scores, k).values[..., -1]`` is removed). The k-th value comes from
    ``np.partition``, which is linear time: no sort.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import top_k_filter
    >>> print(top_k_filter([1.0, 3.0, 2.0, 3.0], k=1))
    [-inf   3. -inf   3.]
    >>> print(top_k_filter([1.0, 3.0, 2.0, 0.0], k=2))
    [-inf   3.   2. -inf]
    """
    x = logits_array(logits)
    k = integer(k, "k", minimum=1)
    if k >= x.shape[-1]:
        return x.copy()
    return np.where(x >= _kth_largest(x, k), x, -np.inf)


def top_p_filter(logits: ArrayLike, p: float) -> np.ndarray:
    r"""Keep the smallest set of most likely tokens whose probability mass reaches ``p`` (nucleus).

    Parameters
    ----------
    logits : array_like, shape (..., vocab)
        Unnormalised scores; ``-inf`` marks a token that is already removed.
    p : float
        The mass to reach, in (0, 1]. ``p = 1`` keeps every token whose probability is not 0.

    Returns
    -------
    ndarray, shape (..., vocab)
        A new array: the kept logits unchanged, the others ``-inf`` (dtype as in
        :func:`apply_temperature`). A row whose logits are all ``-inf`` is returned as it is.

    Raises
    ------
    ValueError
        If ``p`` is not in (0, 1], or ``logits`` is a scalar, has an empty vocabulary or contains
        NaN or ``+inf``.
    TypeError
        If ``p`` is not a real number.

    Notes
    -----
    Rank the tokens by probability $p_{(1)} \ge p_{(2)} \ge \dots$; token $(i)$ is kept iff the mass
    ranked strictly above it is below ``p``: $\sum_{j<i} p_{(j)} < p$. So the kept set is the
    smallest one whose mass reaches ``p``, the token that crosses ``p`` included, and the most
    likely token is always kept (Holtzman et al. 2020, *The Curious Case of Neural Text
    Degeneration*). Equal logits are ranked by index, the lower index first.

    Matches Hugging Face transformers' ``TopPLogitsWarper``, which writes the same rule from the
    other end: sort ascending, remove where the cumulative probability $\le 1 - p$, keep at least
    one. This function computes exactly that comparison, in the logits' dtype (float32 stays
    float32), with the cumulative sum accumulated in float64 as PyTorch's CPU ``cumsum`` does.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import top_p_filter
    >>> logits = np.log([0.5, 0.3, 0.15, 0.05])
    >>> print(np.round(top_p_filter(logits, p=0.7), 3))
    [-0.693 -1.204   -inf   -inf]
    >>> print(np.round(top_p_filter(logits, p=0.1), 3))
    [-0.693   -inf   -inf   -inf]
    """
    x = logits_array(logits)
    p = _probability(p, "p")
    rows = x.reshape(-1, x.shape[-1])
    ids, weights = _filtered_weights(rows, None, p, None)
    out = np.full_like(rows, -np.inf)
    r, j = np.nonzero(weights)  # top-p keeps only tokens of nonzero probability
    out[r, ids[r, j]] = rows[r, ids[r, j]]
    return out.reshape(x.shape)


def min_p_filter(logits: ArrayLike, min_p: float) -> np.ndarray:
    r"""Remove the tokens less likely than ``min_p`` times the most likely token of their row.

    Parameters
    ----------
    logits : array_like, shape (..., vocab)
        Unnormalised scores; ``-inf`` marks a token that is already removed.
    min_p : float
        In [0, 1]. 0 keeps every token, 1 keeps only the most likely token(s).

    Returns
    -------
    ndarray, shape (..., vocab)
        A new array: the kept logits unchanged, the others ``-inf`` (dtype as in
        :func:`apply_temperature`).

    Raises
    ------
    ValueError
        If ``min_p`` is not in [0, 1], or ``logits`` is a scalar, has an empty vocabulary or
        contains NaN or ``+inf``.
    TypeError
        If ``min_p`` is not a real number.

    Notes
    -----
    Token $i$ is kept iff $p_i \ge \text{min\_p} \cdot \max_j p_j$ (Nguyen et al. 2024, *Turning Up
    the Heat: Min-p Sampling for Creative and Coherent LLM Outputs*). The softmax normaliser
    cancels, so the test needs no softmax: $z_i - \max_j z_j \ge \log \text{min\_p}$. The most
    likely token always passes. Matches Hugging Face transformers' ``MinPLogitsWarper`` (which
    compares probabilities, so the two can differ by rounding for a token exactly at the boundary).

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import min_p_filter
    >>> logits = np.log([0.5, 0.3, 0.15, 0.05])
    >>> print(np.round(min_p_filter(logits, min_p=0.25), 3))
    [-0.693 -1.204 -1.897   -inf]
    """
    x = logits_array(logits)
    min_p = _unit_interval(min_p, "min_p")
    return np.where(_min_p_keep(x, _row_max(x), min_p), x, -np.inf)


def apply_repetition_penalty(
    logits: ArrayLike, previous_tokens: ArrayLike, penalty: float
) -> np.ndarray:
    r"""Make the tokens already generated less likely (``penalty > 1``) or more likely (``< 1``).

    Parameters
    ----------
    logits : array_like, shape (..., vocab)
        Unnormalised scores of the next token.
    previous_tokens : array_like of int, shape (n,) or (..., n)
        Token ids seen so far, each in ``[0, vocab)``. Shape (n,) applies to every row; (..., n)
        applies row by row, and its leading dimensions must equal or broadcast to those of
        ``logits``. Repeated ids count once; ``n = 0`` changes nothing.
    penalty : float
        A finite number > 0; 1 changes nothing.

    Returns
    -------
    ndarray, shape (..., vocab)
        A new array (dtype as in :func:`apply_temperature`).

    Raises
    ------
    ValueError
        If ``penalty`` is not finite and > 0; if an id is negative or >= vocab; if
        ``previous_tokens`` is a scalar or its shape does not broadcast to the rows of ``logits``;
        if ``logits`` is a scalar, has an empty vocabulary or contains NaN or ``+inf``.
    TypeError
        If ``previous_tokens`` does not have an integer dtype, or ``penalty`` is not a real number.

    Notes
    -----
    For every distinct seen token $i$: $z_i \leftarrow z_i / \theta$ if $z_i > 0$, else
    $z_i \cdot \theta$, with $\theta$ = ``penalty`` (Keskar et al. 2019, *CTRL*, which divides by
    $\theta$; dividing a negative logit would raise it, hence the multiplication). Matches Hugging
    Face transformers' ``RepetitionPenaltyLogitsProcessor`` (gather, penalise, scatter: each
    distinct token penalised once).

    Examples
    --------
    >>> from llmfund import apply_repetition_penalty
    >>> print(apply_repetition_penalty([2.0, -1.0, 0.5], [0, 1, 0], penalty=2.0))
    [ 1.  -2.   0.5]
    """
    x = logits_array(logits)
    penalty = _finite_positive(penalty, "penalty")
    ids = index_array(previous_tokens, "previous_tokens", upper=x.shape[-1])
    if ids.ndim == 0:
        raise ValueError(f"previous_tokens must have a token axis, got a scalar {ids}")
    target = x.shape[:-1] + ids.shape[-1:]
    try:
        ids = np.broadcast_to(ids, target)
    except ValueError:
        raise ValueError(
            f"previous_tokens has shape {ids.shape}, whose leading dimensions do not broadcast "
            f"to the rows of logits {x.shape[:-1]}"
        ) from None
    out = x.copy()
    seen = np.take_along_axis(x, ids, axis=-1)
    # A repeated id gathers and writes back the same penalised value: penalised once, as in HF.
    np.put_along_axis(out, ids, np.where(seen > 0, seen / penalty, seen * penalty), axis=-1)
    return out


def sample(
    logits: ArrayLike,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    rng: int | np.random.Generator | None = None,
) -> int | np.ndarray:
    r"""Draw the next token from logits after temperature, top-k, top-p and min-p (in that order).

    Parameters
    ----------
    logits : array_like, shape (vocab,) or (..., vocab)
        Unnormalised scores of the next token, one row per sequence.
    temperature : float, default 1.0
        >= 0 and finite. 0 means greedy decoding: the argmax (the first one on ties), no randomness.
    top_k : int, optional
        Keep the ``top_k`` most likely tokens (ties included), as :func:`top_k_filter`.
    top_p : float, optional
        In (0, 1]: keep the nucleus of mass ``top_p``, as :func:`top_p_filter`.
    min_p : float, optional
        In [0, 1]: drop tokens below ``min_p`` times the top probability, as :func:`min_p_filter`.
    rng : None, int or numpy.random.Generator, optional
        The randomness: a Generator is used (and advanced), an int seeds a new one, None makes a
        fresh ``np.random.default_rng()``. NumPy's global random state is never touched.

    Returns
    -------
    int or ndarray of int64, shape (...)
        A Python ``int`` for a single row of shape (vocab,), else one token id per row.

    Raises
    ------
    ValueError
        If a setting is out of range (negative, infinite or NaN temperature, ``top_k < 1``,
        ``top_p`` outside (0, 1], ``min_p`` outside [0, 1]), ``logits / temperature`` overflows,
        a row of ``logits`` is all ``-inf`` (nothing to draw), or ``logits`` is a scalar, has an
        empty vocabulary or contains NaN or ``+inf``.
    TypeError
        If ``top_k`` is not an integer, a setting is not a real number, or ``rng`` is not None, an
        int or a ``numpy.random.Generator``.

    Notes
    -----
    After the filters each kept token has probability $p_i = e^{z_i/T} / \sum_{j \in K} e^{z_j/T}$
    over the kept set $K$, and a removed token has probability 0 exactly, so it is never drawn.
    The draw inverts the cumulative distribution: one $u \sim U[0, 1)$ per row, and the token is
    the first whose cumulative probability exceeds $u$ (tokens taken by decreasing logit when
    ``top_p`` is set, else by id). One number per row (not one per token, as the Gumbel-max trick
    needs) keeps it cheap and makes the result independent of how many candidates were examined. Same filters and order as Hugging Face transformers' sampling
    (``TemperatureLogitsWarper``, ``TopKLogitsWarper``, ``TopPLogitsWarper``,
    ``MinPLogitsWarper``, then ``softmax`` and ``torch.multinomial``); the random numbers differ,
    the distribution is the same.

    Speed: the vocabulary is not sorted. With ``top_k`` each row is first cut to a slice of
    candidates that surely holds every token >= its k-th largest logit (ties included), found
    from the maxima of strided groups of tokens, and the rest of the work is on that slice. With
    ``top_p`` alone the slice is the tokens whose logit lies in the first few buckets below the
    top one, enough buckets that the mass left outside is clearly below ``1 - top_p`` (top-p would
    remove all of it); only ``top_p = 1``, or a nucleus holding nearly all the mass, sorts whole
    rows. With ``min_p`` alone the slice is the tokens min-p keeps.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import sample
    >>> logits = np.array([2.0, 1.0, 0.5, -1.0])
    >>> sample(logits, temperature=0)
    0
    >>> sample(logits, top_k=2, rng=0) in (0, 1)
    True
    >>> tokens = sample(np.zeros((3, 5)), top_p=0.4, rng=np.random.default_rng(1))
    >>> print(tokens.shape, tokens.dtype, bool(np.all(tokens < 2)))
    (3,) int64 True
    """
    x = logits_array(logits)
    temperature = _temperature(temperature, allow_zero=True)
    top_k = None if top_k is None else integer(top_k, "top_k", minimum=1)
    top_p = None if top_p is None else _probability(top_p, "top_p")
    min_p = None if min_p is None else _unit_interval(min_p, "min_p")
    generator = _generator(rng)
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[0] and np.isneginf(rows.max(axis=-1)).any():
        row = int(np.argmax(np.isneginf(rows.max(axis=-1))))
        raise ValueError(f"logits row {row} is all -inf: there is no token to sample")
    tokens = _draw(rows, temperature, top_k, top_p, min_p, generator)
    return int(tokens[0]) if x.ndim == 1 else tokens.reshape(x.shape[:-1])


# --- the core of sample ------------------------------------------------------------------------


def _draw(rows, temperature, top_k, top_p, min_p, generator, *, full=False):
    """One token per row of ``rows`` (shape (n, vocab), no row all -inf), as int64."""
    if rows.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    if temperature == 0:
        # Greedy. Every filter keeps the most likely token, so the filters cannot change this.
        return np.argmax(rows, axis=-1).astype(np.int64)
    if temperature != 1:
        rows = _divide(rows, temperature)
    ids, weights = _filtered_weights(rows, top_k, top_p, min_p, full=full)
    return _inverse_cdf(ids, weights, generator.random(rows.shape[0]))


def _sampling_probabilities(
    logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None, full=False
):
    """The distribution ``sample`` draws from, shape (..., vocab), float64 (for tests and lessons).

    Settings are not checked here (``sample`` checks them). ``full=True`` uses the slow path over
    the whole vocabulary instead of the candidate slice; the two agree exactly.
    """
    x = logits_array(logits)
    rows = x.reshape(-1, x.shape[-1])
    probs = np.zeros(rows.shape)
    if temperature == 0:
        probs[np.arange(rows.shape[0]), np.argmax(rows, axis=-1)] = 1.0
        return probs.reshape(x.shape)
    if temperature != 1:
        rows = _divide(rows, temperature)
    ids, weights = _filtered_weights(rows, top_k, top_p, min_p, full=full)
    np.add.at(probs, (np.arange(rows.shape[0])[:, None], ids), weights)  # padding adds 0
    return (probs / probs.sum(axis=-1, keepdims=True)).reshape(x.shape)


def _filtered_weights(rows, top_k, top_p, min_p, *, full=False):
    """The candidate tokens of each row and their unnormalised probabilities after the filters.

    Returns ``ids`` (int64) and ``weights`` (float, >= 0), both (n, m): token ``ids[r, j]`` has
    probability ``weights[r, j] / weights[r].sum()``; a removed token has weight 0. The candidates
    are a slice of each row chosen so that every token outside it is surely removed; ``full=True``
    skips that shortcut and works on the whole vocabulary (the tests check the two agree exactly).
    """
    shift = _row_max(rows)  # subtracted before exp, so e = exp(z - max) <= 1 never overflows
    vocab = rows.shape[-1]
    use_top_k = top_k is not None and top_k < vocab
    mask, total = None, None
    if full:
        pass
    elif use_top_k:
        mask = rows >= _kth_lower_bound(rows, top_k)
    elif top_p is not None and top_p < 1:
        # Top-p needs the mass of the tokens left outside the slice: `total` is the whole row's.
        mask, total = _nucleus_candidates(rows, shift, top_p)
    elif min_p:
        mask = _min_p_keep(rows, shift, min_p)
    vals, ids = _gather(rows, mask)

    keep = vals > -np.inf  # also drops the -inf padding of _gather
    if use_top_k:
        # The slice holds every token >= the row's k-th largest, so its k-th largest is the row's.
        keep &= vals >= _kth_largest(vals, top_k)
    weights = np.where(keep, np.exp(vals - shift), 0)
    if top_p is not None:
        # Rank by logit, equal logits by index (a stable sort of a slice already in index order).
        order = np.argsort(-vals, axis=-1, kind="stable")
        vals, ids, weights = (np.take_along_axis(a, order, axis=-1) for a in (vals, ids, weights))
        weights = np.where(_top_p_keep(weights, top_p, total), weights, 0)
    if min_p:
        weights = np.where(_min_p_keep(vals, shift, min_p), weights, 0)
    return ids, weights


def _nucleus_candidates(rows, shift, p):
    """A mask holding every token top-p keeps, and each row's total mass, found without a sort.

    Bucket the tokens by how far their logit is below the row's top one and add up the probability
    mass in each bucket. Keep the buckets down to the first after which the mass left is clearly
    below 1 - p: top-p removes every token outside (the mass ranked at or below such a token is
    smaller still). Returns ``(None, None)``, the whole row, if no bucket is clearly enough.
    """
    n = rows.shape[0]
    gap = shift - rows  # >= 0 nats below the top; inf for a -inf logit
    e = np.exp(-gap)
    bucket = np.minimum(gap * _BUCKETS_PER_NAT, _BUCKETS - 1).astype(np.intp)
    offset = _BUCKETS * np.arange(n)[:, None]  # one bincount for all rows: row r uses bins r*B...
    mass = np.bincount((bucket + offset).ravel(), weights=e.ravel(), minlength=n * _BUCKETS)
    mass = mass.reshape(n, _BUCKETS)
    total = mass.sum(axis=-1, keepdims=True)
    left = total - np.cumsum(mass, axis=-1)  # the mass below each bucket
    # The 1e-3 margin keeps the answer independent of rounding in these sums.
    enough = left <= (1 - p) * (1 - 1e-3) * total
    if not enough.any(axis=-1).all():
        return None, None
    return bucket <= np.argmax(enough, axis=-1)[:, None], total


def _top_p_keep(e, p, total=None):
    """Keep-mask of top-p over rows of unnormalised probabilities ``e`` in decreasing order.

    As Hugging Face's TopPLogitsWarper: remove a token iff the probability mass ranked at or
    below it is <= 1 - p. ``total`` is the row's whole mass when ``e`` is only a slice of the top
    tokens: the rest of the row ranks below all of them.
    """
    # Mass at or below each token = HF's ascending cumsum; accumulated in float64, like torch's
    # CPU cumsum, then compared in the logits' dtype, like HF's float32 comparison.
    below = np.cumsum(e[:, ::-1], axis=-1, dtype=np.float64)[:, ::-1]
    if total is not None:
        below += np.maximum(total - below[:, :1], 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 for a row that is all -inf
        share = (below / below[:, :1]).astype(e.dtype)
    keep = share > 1 - p
    # The top token is always kept (HF's min_tokens_to_keep=1). Its share is 1 > 1 - p in exact
    # arithmetic, but for p below the dtype's epsilon 1 - p rounds to 1 and the comparison fails.
    keep[:, :1] = True  # (a slice, so an empty batch of shape (0, n) works too)
    return keep


def _min_p_keep(x, shift, min_p):
    """Keep-mask of min-p: p_i >= min_p * p_max, i.e. z_i - z_max >= log(min_p)."""
    return x - shift >= (math.log(min_p) if min_p > 0 else -math.inf)


def _gather(rows, mask):
    """The tokens ``mask`` selects in each row, in index order, left-aligned and padded with -inf.

    Returns ``vals`` (n, m) and ``ids`` (n, m) with m the largest count in a row; ``mask=None``
    selects everything. Rows may select different counts (ties at a top-k boundary).
    """
    if mask is None:
        return rows, np.broadcast_to(np.arange(rows.shape[-1]), rows.shape)
    r, c = np.divmod(np.flatnonzero(mask), rows.shape[-1])  # much faster than a 2-D np.nonzero
    counts = np.bincount(r, minlength=rows.shape[0])
    pos = np.arange(r.size) - np.repeat(np.cumsum(counts) - counts, counts)  # place within the row
    vals = np.full((rows.shape[0], counts.max(initial=0)), -np.inf, dtype=rows.dtype)
    ids = np.zeros(vals.shape, dtype=np.int64)
    vals[r, pos] = rows[r, c]
    ids[r, pos] = c
    return vals, ids


def _inverse_cdf(ids, weights, u):
    """Per row, the id at the first position where the cumulative weight exceeds ``u * total``."""
    cdf = np.cumsum(weights, axis=-1, dtype=np.float64)
    pos = (cdf <= u[:, None] * cdf[:, -1:]).sum(axis=-1)
    # u * total can round up to total, and then no position exceeds it: take the last token of
    # nonzero weight. Any other answer is a position where the cdf rises, so its weight is > 0.
    last = weights.shape[-1] - 1 - np.argmax(weights[:, ::-1] > 0, axis=-1)
    pos = np.minimum(pos, last)
    return np.take_along_axis(ids, pos[:, None], axis=-1)[:, 0].astype(np.int64)


# --- small helpers -----------------------------------------------------------------------------


def _kth_lower_bound(rows, k):
    """A value <= the k-th largest of each row of ``rows`` (n, vocab), shape (n, 1), in one pass.

    Deal each row into G >= k groups (token j to group j % G) and take each group's maximum. The
    k-th largest of those maxima is <= the row's k-th largest: k groups have a maximum at least
    that big, and each maximum is a token. Usually only a few more than k tokens pass it, so the
    exact k-th value then needs a partition of that slice, not of the whole row.
    """
    n, vocab = rows.shape
    # Tokens per group: a divisor of vocab (so the reshape below is a view), at most 64, and
    # leaving at least 4k groups. A vocabulary with no such divisor takes the plain partition.
    size = next((s for s in range(64, 1, -1) if vocab % s == 0 and vocab // s >= 4 * k), 1)
    if size == 1:
        return _kth_largest(rows, k)
    # (n, size, groups) puts group g in column g; max over axis 1 runs over contiguous memory.
    group_max = rows.reshape(n, size, vocab // size).max(axis=1)
    return _kth_largest(group_max, k)


def _kth_largest(x, k):
    """The k-th largest value along the last axis, shape (..., 1), by a partition (no sort)."""
    return np.partition(x, x.shape[-1] - k, axis=-1)[..., -k, None]


def _row_max(x):
    """Row maxima, shape (..., 1); 0 for a row that is all -inf (so x - max is -inf, not NaN)."""
    top = x.max(axis=-1, keepdims=True)
    return np.where(np.isneginf(top), 0, top)


def _divide(x, temperature):
    """``x / temperature``, refusing a temperature that makes finite logits overflow (or NaN)."""
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            return x / temperature
    except FloatingPointError:
        raise ValueError(
            f"temperature={temperature} is out of range for {x.dtype} logits: logits / temperature "
            "overflows (for greedy decoding use sample(logits, temperature=0))"
        ) from None


def _temperature(value, *, allow_zero):
    value = real(value, "temperature")
    if value == 0 and not allow_zero:
        raise ValueError(
            "temperature must be > 0, got 0.0 "
            "(for greedy decoding use sample(logits, temperature=0))"
        )
    if value < 0 or math.isinf(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"temperature must be a finite number {bound}, got {value}")
    return value


def _finite_positive(value, name):
    value = real(value, name)
    if not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _probability(value, name):
    value = real(value, name)
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value


def _unit_interval(value, name):
    value = real(value, name)
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def _generator(rng):
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(integer(rng, "rng", minimum=0))
    raise TypeError(
        f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}"
    )
