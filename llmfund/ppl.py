r"""Negative log-likelihood and perplexity: how surprised a model is by the tokens that came next.

At each position the logits define a distribution $p(\cdot \mid \text{context})$ over the
vocabulary; the negative log-likelihood (NLL) of the token that actually came next is
$-\log p(y_t)$, in nats. Perplexity (PPL) is $\exp$ of the mean NLL: the size of a uniform
vocabulary that would be just as surprised. Guessing uniformly over V tokens gives PPL V; a model
that is always sure and right gives PPL 1.

Evaluation needs a little bookkeeping around that formula, and this module does it exactly:
:func:`causal_lm_nll` shifts the labels the way a causal language model's loss does
(``logits[..., :-1, :]`` predict ``labels[..., 1:]``) and ignores ``-100`` labels (padding, a
prompt); ``ppl_from_nll(nll, mask=...)`` averages over the tokens that count; :func:`strided_nll`
and :func:`strided_ppl` score a text longer than the model's context with overlapping windows;
:func:`bits_per_byte` divides the total NLL by the text's bytes, a count every tokenizer
shares, so that models with different tokenizers can be compared.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from ._checks import float_array, float_dtype, index_array, integer, numeric_array

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


def ppl_from_nll(nll: ArrayLike, *, mask: ArrayLike | None = None) -> float:
    r"""Perplexity from per-token NLLs: ``exp(mean(nll))``, optionally over the masked tokens only.

    Parameters
    ----------
    nll : array_like, any shape
        Per-token negative log-likelihoods in nats, each >= 0 (``inf`` allowed), at least one.
    mask : array_like of bool, same shape as ``nll``, optional
        True where a token counts (keyword-only). Tokens where it is False (padding, a prompt,
        context tokens of a sliding window) are left out of the mean entirely, whatever their
        NLL; at least one must be True. Default: every token counts.

    Returns
    -------
    float
        $\exp(\frac{1}{N}\sum_t \text{nll}_t)$ over the $N$ counted tokens, >= 1; ``inf`` if a
        counted NLL is ``inf`` or the mean is too large to exponentiate.

    Raises
    ------
    ValueError
        If ``nll`` is empty, contains NaN, or contains a negative value (the NLL of a discrete
        distribution is >= 0: a negative one means the input is not an NLL); if ``mask`` does not
        have the shape of ``nll`` or selects no token.
    TypeError
        If ``nll`` is not an array of real numbers, or ``mask`` is not a boolean array.

    Notes
    -----
    $\text{PPL} = \exp(\bar{\text{nll}})$: the geometric mean of $1 / p(y_t)$, so it is the
    NLLs that are averaged, not per-token perplexities. The mean is taken in float64.

    With a mask, $\text{PPL} = \exp\big(\sum_t m_t\, \text{nll}_t / \sum_t m_t\big)$: the
    mean of PyTorch's ``cross_entropy(..., ignore_index=-100)`` over the labels that are not
    ``-100`` (see :func:`causal_lm_nll`). Every token of a batch counts once, so a long sequence
    weighs more than a short one: this is the perplexity of the pooled tokens, not the mean of
    per-sequence perplexities.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import ppl_from_nll
    >>> print(round(ppl_from_nll([np.log(4.0), np.log(4.0)]), 4))
    4.0
    >>> print(round(ppl_from_nll([0.0, np.log(4.0)]), 4))
    2.0
    >>> print(round(ppl_from_nll([0.0, np.log(4.0), 99.0], mask=[True, True, False]), 4))
    2.0
    """
    counted = _counted_nll(nll, mask)
    with np.errstate(over="ignore"):  # a huge mean NLL is a perplexity of inf, not an error
        return float(np.exp(counted.mean(dtype=np.float64)))


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


def causal_lm_nll(
    logits: ArrayLike, labels: ArrayLike, *, ignore_index: int = -100
) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-token NLL of a causal language model on its own input: shifted, with ignored labels.

    A causal language model returns logits for every input position, and the logits at position
    ``i`` predict the token at ``i + 1``. This scores ``labels[..., 1:]`` under
    ``logits[..., :-1, :]`` and leaves out every label equal to ``ignore_index``, as the loss of
    a Hugging Face ``...ForCausalLM`` model does when it is given ``labels``.

    Parameters
    ----------
    logits : array_like, shape (..., t, vocab)
        The model's logits for sequences of ``t >= 1`` tokens, as in :func:`sequence_nll`.
    labels : array_like of int, shape (..., t)
        Aligned with the *inputs*, not shifted: usually the input ids themselves, with
        ``ignore_index`` wherever a token must not be scored (padding, a prompt). Each label is
        in ``[0, vocab)`` or equals ``ignore_index``.
    ignore_index : int, default -100
        Labels equal to it are not scored (keyword-only), as in PyTorch's
        ``CrossEntropyLoss(ignore_index=-100)``.

    Returns
    -------
    nll : ndarray, shape (..., t - 1)
        ``nll[..., i]`` is $-\log p(\text{labels}_{i+1} \mid \text{tokens}_{\le i})$, and 0.0
        where that label is ignored (as PyTorch's ``reduction="none"`` gives). dtype as
        :func:`sequence_nll`.
    mask : ndarray of bool, shape (..., t - 1)
        True where the label was scored; ``ppl_from_nll(nll, mask=mask)`` is the perplexity.

    Raises
    ------
    ValueError
        If ``logits`` has fewer than 2 dimensions, no position or an empty vocabulary; if
        ``labels.shape != logits.shape[:-1]``; if a label is neither in ``[0, vocab)`` nor
        ``ignore_index``; and as :func:`sequence_nll` for bad logits (NaN, ``+inf``, a row that
        is all ``-inf``).
    TypeError
        If ``labels`` does not have an integer dtype, ``ignore_index`` is not an integer, or
        ``logits`` is not an array of real numbers.

    Notes
    -----
    $\text{nll}_i = -\log \operatorname{softmax}(z_i)_{y_{i+1}}$ for $i = 0, \dots, t-2$. The
    first label is never scored (nothing predicts the first token), which is why a sequence of
    ``t`` tokens gives ``t - 1`` NLLs. Mask the *labels*, never the logits: the logits at a
    prompt's last position are the ones that predict the answer's first token.

    Matches Hugging Face transformers' ``ForCausalLMLoss`` (pad the labels on the right with
    ``ignore_index``, shift them left by one, then ``torch.nn.functional.cross_entropy(...,
    ignore_index=ignore_index)``): ``ppl_from_nll(nll, mask=mask)`` equals
    ``exp(model(input_ids, labels=labels).loss)``. Like that loss, the logits are scored in
    float32 at least (see :func:`sequence_nll`).

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.ppl import causal_lm_nll, ppl_from_nll
    >>> logits = np.log([[0.5, 0.5, 1e-9], [0.25, 0.25, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    >>> nll, mask = causal_lm_nll(logits, [2, 1, -100])  # row 0 predicts the 1; the 3rd is padding
    >>> print(np.round(nll, 4), mask)
    [0.6931 0.    ] [ True False]
    >>> print(round(ppl_from_nll(nll, mask=mask), 4))
    2.0
    """
    x = numeric_array(logits, "logits")
    if x.ndim < 2:
        raise ValueError(f"logits must have shape (..., t, vocab), got shape {x.shape}")
    t, vocab = x.shape[-2], x.shape[-1]
    if t == 0:
        raise ValueError(f"logits must hold at least one position (t >= 1), got shape {x.shape}")
    if vocab == 0:
        raise ValueError("logits has an empty vocabulary (last axis has length 0)")
    ignore = integer(ignore_index, "ignore_index")
    y = _label_array(labels, vocab, ignore)
    if y.shape != x.shape[:-1]:
        raise ValueError(
            f"labels must have shape logits.shape[:-1] = {x.shape[:-1]}, got {y.shape}"
        )
    targets = y[..., 1:]
    mask = targets != ignore
    nll = sequence_nll(x[..., :-1, :], np.where(mask, targets, 0))
    nll[~mask] = 0.0  # what cross_entropy(..., reduction="none") gives an ignored label
    return nll, mask


def strided_windows(n_tokens: int, *, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    r"""The windows of a strided (sliding-window) evaluation, as ``(begin, end, first)`` triples.

    A window feeds tokens ``begin .. end - 1`` to the model and scores tokens ``first .. end - 1``;
    its tokens ``begin .. first - 1`` are context only (scored by an earlier window, or token 0,
    which nothing predicts).

    Parameters
    ----------
    n_tokens : int
        Length of the text in tokens, >= 2.
    max_length : int
        The model's context: the most tokens one window may hold, >= 2 (keyword-only).
    stride : int
        How many tokens each window starts after the previous one, in ``[1, max_length]``
        (keyword-only). ``stride == max_length`` cuts the text into non-overlapping chunks.

    Returns
    -------
    list of (int, int, int)
        The windows, in order. Every token but token 0 is scored by exactly one window; with
        ``stride == max_length`` the first token of every chunk is not scored either (it has no
        context inside its chunk), and a last chunk of one token, which would score nothing, is
        left out.

    Raises
    ------
    ValueError
        If ``n_tokens < 2``, ``max_length < 2``, ``stride < 1`` or ``stride > max_length`` (a
        larger stride would skip tokens).
    TypeError
        If an argument is not an integer.

    Notes
    -----
    The loop of Hugging Face's guide "Perplexity of fixed-length models": windows begin at
    ``0, stride, 2 * stride, ...``, end at ``min(begin + max_length, n_tokens)``, and the loop
    stops at the first window that reaches the end of the text. A window scores the
    ``trg_len = end - prev_end`` tokens it adds to the previous windows, except that the label
    shift leaves the window's own first token unscored; that happens only in the first window,
    or in every chunk when ``stride == max_length``. Hence $N$, the number of scored tokens, is
    ``n_tokens - 1`` for overlapping windows (``stride < max_length``).

    Every scored token of a later window has at least ``max_length - stride`` tokens of context
    before it in its window; the first window's tokens have all the tokens before them. So a
    model that looks at most ``c`` tokens back gets exactly its full-sequence NLLs whenever
    ``max_length - stride >= c``.

    Examples
    --------
    >>> from llmfund.ppl import strided_windows
    >>> print(strided_windows(10, max_length=4, stride=2))
    [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    >>> print(strided_windows(10, max_length=4, stride=4))  # chunks: each first token unscored
    [(0, 4, 1), (4, 8, 5), (8, 10, 9)]
    """
    n_tokens = integer(n_tokens, "n_tokens", minimum=2)
    max_length = integer(max_length, "max_length", minimum=2)
    stride = integer(stride, "stride", minimum=1)
    if stride > max_length:
        raise ValueError(
            f"stride must be <= max_length = {max_length} (a larger stride would skip tokens), "
            f"got {stride}"
        )
    windows = []
    prev_end = 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + max_length, n_tokens)
        first = max(prev_end, begin + 1)  # the window's first token has no context in it
        if first < end:
            windows.append((begin, end, first))
        prev_end = end
        if end == n_tokens:
            break
    return windows


def strided_nll(
    logits_fn: Callable[[np.ndarray], ArrayLike],
    tokens: ArrayLike,
    *,
    max_length: int,
    stride: int,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-token NLL of a text longer than a model's context, by strided (sliding) windows.

    Parameters
    ----------
    logits_fn : callable
        ``logits_fn(ids)`` takes a 1-D int64 array of ``t <= max_length`` token ids and returns
        their logits, shape ``(t, vocab)``, row ``i`` predicting token ``i + 1``, e.g.
        ``lambda ids: decoder_forward(params, ids)``. It is called once per window, on a copy.
    tokens : array_like of int, shape (n,)
        The whole text, at least 2 tokens, each in ``[0, vocab)``.
    max_length : int
        The most tokens the model is given at once, >= 2 (keyword-only).
    stride : int
        How far each window starts after the previous one, in ``[1, max_length]``
        (keyword-only). ``stride == max_length`` is the naive non-overlapping evaluation.

    Returns
    -------
    nll : ndarray of float64, shape (n,)
        ``nll[j]`` is token ``j``'s NLL given the context its window gave it; 0.0 where the
        token was not scored.
    scored : ndarray of bool, shape (n,)
        True for the scored tokens (see :func:`strided_windows`): all but token 0 when
        ``stride < max_length``. ``ppl_from_nll(nll, mask=scored)`` is :func:`strided_ppl`.

    Raises
    ------
    ValueError
        If ``tokens`` is not 1-D or holds fewer than 2 tokens; if ``logits_fn`` returns an array
        that is not ``(t, vocab)`` for a window of ``t`` tokens, or a vocabulary a token does
        not fit in; as :func:`strided_windows` for ``max_length`` and ``stride``; as
        :func:`sequence_nll` for bad logits.
    TypeError
        If ``logits_fn`` is not callable, ``tokens`` is not an integer array, or ``logits_fn``
        returns something that is not an array of real numbers.

    Notes
    -----
    Windows as :func:`strided_windows`. Within a window the logits at position $i$ predict
    the token at $i + 1$, and only the tokens ``first .. end - 1`` are scored, each exactly
    once over the whole text. Keeping one NLL per token is what makes the average exact: the
    perplexity is $\exp$ of the sum of the NLLs over the count of scored tokens, not a mean of
    window means (each window scores a different number of tokens), and not a window mean times
    the window's ``trg_len`` (the shift leaves the first window one token short).

    Smaller strides give the scored tokens more context (at least ``max_length - stride``
    tokens) and cost more: about ``n / stride`` forward passes of up to ``max_length`` tokens.
    With ``stride == 1`` every token gets ``max_length - 1`` tokens of context.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.ppl import strided_nll
    >>> table = np.log(np.full((3, 3), 0.1) + 0.7 * np.eye(3)[[1, 2, 0]])  # i -> i + 1 w.p. 0.8
    >>> nll, scored = strided_nll(lambda ids: table[ids], np.arange(7) % 3, max_length=4, stride=2)
    >>> print(np.round(nll, 4))
    [0.     0.2231 0.2231 0.2231 0.2231 0.2231 0.2231]
    >>> print(scored)
    [False  True  True  True  True  True  True]
    """
    if not callable(logits_fn):
        raise TypeError(f"logits_fn must be callable, got {type(logits_fn).__name__}")
    ids = index_array(tokens, "tokens")
    if ids.ndim != 1:
        raise ValueError(f"tokens must be 1-D (one text), got shape {ids.shape}")
    if ids.size < 2:
        raise ValueError(
            f"tokens must hold at least 2 tokens (the first has no context), got {ids.size}"
        )
    windows = strided_windows(ids.size, max_length=max_length, stride=stride)
    ids = ids.astype(np.int64, copy=False)
    nll = np.zeros(ids.size)
    scored = np.zeros(ids.size, dtype=bool)
    for begin, end, first in windows:
        window = ids[begin:end]
        logits = numeric_array(logits_fn(window.copy()), "logits_fn(ids)")
        if logits.ndim != 2 or logits.shape[0] != end - begin:
            raise ValueError(
                f"logits_fn must return logits of shape (t, vocab) for a window of t = "
                f"{end - begin} tokens, got shape {logits.shape}"
            )
        high = int(window.max())
        if high >= logits.shape[1]:
            raise ValueError(
                f"tokens must be < {logits.shape[1]} (the vocabulary of logits_fn's logits), "
                f"got {high}"
            )
        # Row i of the window predicts token begin + i + 1: the targets first..end-1 need rows
        # first-begin-1 .. end-begin-2.
        nll[first:end] = sequence_nll(logits[first - begin - 1 : end - begin - 1], ids[first:end])
        scored[first:end] = True
    return nll, scored


def strided_ppl(
    logits_fn: Callable[[np.ndarray], ArrayLike],
    tokens: ArrayLike,
    *,
    max_length: int,
    stride: int,
) -> float:
    r"""Perplexity of a text longer than a model's context, by strided (sliding) windows.

    Parameters
    ----------
    logits_fn : callable
        As :func:`strided_nll`: ``logits_fn(ids)`` returns the ``(t, vocab)`` logits of a window.
    tokens : array_like of int, shape (n,)
        The whole text, at least 2 tokens.
    max_length : int
        The most tokens the model is given at once, >= 2 (keyword-only).
    stride : int
        How far each window starts after the previous one, in ``[1, max_length]``
        (keyword-only). ``stride == max_length`` is the naive non-overlapping evaluation, which
        gives most tokens less context and so usually a higher perplexity.

    Returns
    -------
    float
        $\exp\big(\frac{1}{N}\sum_j \text{nll}_j\big)$ over the $N$ scored tokens, >= 1.

    Raises
    ------
    ValueError, TypeError
        As :func:`strided_nll`.

    Notes
    -----
    ``ppl_from_nll(*strided_nll(...))`` with the mask as keyword: the token-weighted mean over
    the whole text that Hugging Face's guide "Perplexity of fixed-length models" computes. With
    ``max_length >= n`` there is one window and the result is the full-sequence perplexity,
    ``ppl_from_logits(logits[:-1], tokens[1:])``.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.ppl import ppl_from_logits, strided_ppl
    >>> table = np.log(np.full((3, 3), 0.1) + 0.7 * np.eye(3)[[1, 2, 0]])  # i -> i + 1 w.p. 0.8
    >>> tokens = np.arange(12) % 3
    >>> print(round(strided_ppl(lambda ids: table[ids], tokens, max_length=4, stride=2), 4))
    1.25
    >>> print(round(ppl_from_logits(table[tokens[:-1]], tokens[1:]), 4))  # the whole text at once
    1.25
    """
    nll, scored = strided_nll(logits_fn, tokens, max_length=max_length, stride=stride)
    return ppl_from_nll(nll, mask=scored)


def bits_per_byte(nll: ArrayLike, n_bytes: int, *, mask: ArrayLike | None = None) -> float:
    r"""Total NLL of a text in bits, divided by the text's length in bytes.

    Parameters
    ----------
    nll : array_like, any shape
        Per-token NLLs in nats of the tokens that spell the text, as in :func:`ppl_from_nll`.
    n_bytes : int
        Length of that text in UTF-8 bytes, ``len(text.encode("utf-8"))``, >= 1. Pass its
        length in characters instead to get bits per character.
    mask : array_like of bool, same shape as ``nll``, optional
        True where a token counts (keyword-only), as in :func:`ppl_from_nll`.

    Returns
    -------
    float
        $\frac{1}{B \ln 2}\sum_t m_t\, \text{nll}_t$ for $B$ = ``n_bytes``.

    Raises
    ------
    ValueError
        If ``n_bytes < 1``; as :func:`ppl_from_nll` for ``nll`` and ``mask``.
    TypeError
        If ``n_bytes`` is not an integer; as :func:`ppl_from_nll`.

    Notes
    -----
    Per-token perplexity depends on the tokenizer: the same total NLL spread over more tokens
    gives a lower per-token perplexity. A text has the same number of bytes whatever the
    tokenizer, so bits per byte compares models with different tokenizers. The two are linked
    by $\text{PPL} = 2^{\text{bpb} \cdot B / N}$ for $N$ counted tokens. The Pile (Gao et al.,
    2020) reports bits per UTF-8 byte; GPT-2 (Radford et al., 2019) reports each benchmark's
    likelihood per the benchmark's own unit (character, byte or word) for the same reason.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.ppl import bits_per_byte
    >>> text = "abab"
    >>> as_chars = np.full(4, np.log(2.0))  # 4 tokens, p = 1/2 each: 4 bits in all
    >>> as_pairs = np.full(2, np.log(4.0))  # "ab" "ab": 2 tokens, p = 1/4 each: 4 bits in all
    >>> print(bits_per_byte(as_chars, len(text.encode("utf-8"))), bits_per_byte(as_pairs, 4))
    1.0 1.0
    """
    counted = _counted_nll(nll, mask)
    n_bytes = integer(n_bytes, "n_bytes", minimum=1)
    return float(counted.sum(dtype=np.float64) / (n_bytes * np.log(2.0)))

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


def _counted_nll(nll, mask):
    """The NLLs that count, checked, as a 1-D array: all of them, or those where ``mask`` is True."""
    a = float_array(nll, "nll")
    if a.size == 0:
        raise ValueError("nll is empty: perplexity needs at least one token")
    lowest = float(a.min())
    if lowest < 0:
        raise ValueError(f"nll must be >= 0 (the NLL of a discrete distribution), got {lowest}")
    if mask is None:
        return a.reshape(-1)
    m = np.asarray(mask)
    # Not _checks.bool_mask: its message speaks of attention; here True means "the token counts".
    if m.dtype != np.bool_:
        raise TypeError(f"mask must be a boolean array (True = the token counts), got dtype {m.dtype}")
    if m.shape != a.shape:
        raise ValueError(f"mask must have the shape of nll {a.shape}, got {m.shape}")
    if not m.any():
        raise ValueError("mask selects no token: perplexity needs at least one")
    return a[m]


def _label_array(labels, vocab, ignore):
    """Integer labels, each in ``[0, vocab)`` or equal to ``ignore``."""
    y = np.asarray(labels)
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype, got {y.dtype}")
    bad = y[(y != ignore) & ((y < 0) | (y >= vocab))]
    if bad.size:
        raise ValueError(
            f"labels must be in [0, {vocab}) or equal ignore_index={ignore}, got {int(bad[0])}"
        )
    return y
