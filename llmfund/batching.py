r"""Static and continuous batching of generation requests: a discrete-step serving simulation.

A GPU generates faster per token when it decodes many sequences at once: every decode step
reads all the weights, whatever the batch size, so a bigger batch shares that cost. How the
batch is formed decides how much of that a server gets:

* **static batching** takes up to ``max_batch`` waiting requests, runs them until the
  longest one has finished, then takes the next batch. A request that finishes early leaves
  its slot idle, and a request that arrives meanwhile waits for the whole batch. Memory is
  reserved per request for its prompt plus the most it may generate (a contiguous cache).
* **continuous (iteration-level) batching** (Orca, Yu et al., 2022; vLLM, Kwon et al., 2023)
  decides the batch at every step: finished requests leave at once and waiting requests join
  as soon as a slot and KV memory are free. With a paged cache (:mod:`llmfund.paged_kv_cache`)
  a request holds only the blocks its tokens fill, so many more fit in the same memory.

The functions here simulate both on the same requests, step by step, with an explicit cost
model for the time of a step (:class:`StepCost`), and return per-request latencies and
per-step batch and memory figures (:class:`BatchingResult`). Nothing is computed by a model:
only who is in the batch, how many tokens it processes, and how much KV memory it holds.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _checks

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StepCost:
    r"""The model time of one step: $c_0 + c_p N_\text{prefill} + c_d N_\text{decode} + c_c N_\text{context}$.

    Parameters
    ----------
    c0 : float, default 10.0
        Fixed cost of any step (> 0): reading every weight once, kernel launches. Decoding is
        memory-bound, so this dominates a small batch.
    c_prefill : float, default 0.1
        Cost per prompt token processed in the step (>= 0), compute-bound matmuls.
    c_decode : float, default 0.1
        Cost per sequence decoding one token in the step (>= 0).
    c_context : float, default 0.0003
        Cost per cached token read by the decoding sequences' attention (>= 0): the KV cache
        is read once per step per sequence, which makes large batches of long sequences slower.

    Notes
    -----
    The defaults are **illustrative, not measured**: orders of magnitude of a 7B-parameter
    fp16 model on one A100-class GPU with time in milliseconds (≈ 14 GB of weights read in
    ≈ 10 ms; ≈ 14 GFLOP per token, ≈ 0.1 ms at a realistic fraction of peak; ≈ 0.5 MB of
    KV per cached token at ≈ 1.5 TB/s). Real step times are closer to a maximum of compute
    and memory time than to this sum, and the attention of a prefill (quadratic in the
    prompt) is left out; the model keeps the two facts the lessons need: a step has a large
    fixed cost that batching shares, and prefill costs per token while decode costs per
    sequence. Prefill and decode may share a step (Orca's selective batching; vLLM with
    mixed batches): the step's cost is the sum of both parts.

    Examples
    --------
    >>> from llmfund.batching import StepCost
    >>> cost = StepCost()
    >>> print(round(cost(0, 1, 500), 2), round(cost(0, 64, 64 * 500), 2), round(cost(200, 0, 0), 2))
    10.25 26.0 30.0
    """

    c0: float = 10.0
    c_prefill: float = 0.1
    c_decode: float = 0.1
    c_context: float = 0.0003

    def __post_init__(self) -> None:
        for name in ("c0", "c_prefill", "c_decode", "c_context"):
            value = _checks.real(getattr(self, name), name)
            if not math.isfinite(value) or value < 0 or (name == "c0" and value == 0):
                bound = "> 0" if name == "c0" else ">= 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {value}")
            object.__setattr__(self, name, value)

    def __call__(self, prefill_tokens: ArrayLike, decode_seqs: ArrayLike, context_tokens: ArrayLike) -> Any:
        """Step time(s) for the given counts (scalars or arrays of equal shape)."""
        return (
            self.c0
            + self.c_prefill * np.asarray(prefill_tokens)
            + self.c_decode * np.asarray(decode_seqs)
            + self.c_context * np.asarray(context_tokens)
        )


@dataclass(frozen=True)
class Requests:
    r"""A workload: when each request arrives, how long its prompt is, how much it generates.

    Parameters
    ----------
    arrival : array_like of float, shape (n,)
        Arrival time of each request, in the cost model's time unit (>= 0, finite).
    prompt_len : array_like of int, shape (n,)
        Prompt tokens (>= 1).
    output_len : array_like of int, shape (n,)
        Tokens the request will generate (>= 1), the first one by its prefill step. Unknown
        to the server until the request stops (end-of-sequence token).
    max_output : array_like of int, shape (n,), optional
        The most the request may generate (``max_new_tokens``), known to the server; at
        least ``output_len``. Static batching reserves ``prompt_len + max_output`` slots.
        Defaults to ``output_len`` (an oracle server that knows each output length).

    Raises
    ------
    ValueError
        If the arrays are not 1-D of one non-empty length, or a value is out of range.
    TypeError
        If the lengths are not integers.

    Examples
    --------
    >>> from llmfund.batching import Requests
    >>> reqs = Requests(arrival=[0, 0, 2.5], prompt_len=[4, 8, 2], output_len=[3, 1, 6])
    >>> print(len(reqs), reqs.arrival, reqs.max_output)   # max_output defaults to output_len
    3 [0.  0.  2.5] [3 1 6]
    >>> reqs = Requests([0, 0, 2.5], [4, 8, 2], [3, 1, 6], max_output=[16, 16, 16])
    >>> print(reqs.prompt_len + reqs.max_output)          # slots static batching reserves
    [20 24 18]
    """

    arrival: np.ndarray
    prompt_len: np.ndarray
    output_len: np.ndarray
    max_output: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        arrival = _checks.float_array(self.arrival, "arrival", allow_inf=False).astype(np.float64)
        if arrival.ndim != 1 or arrival.size == 0:
            raise ValueError(f"arrival must be a non-empty 1-D array, got shape {arrival.shape}")
        if arrival.min() < 0:
            raise ValueError(f"arrival must be >= 0, got {float(arrival.min())}")
        arrays = {"arrival": arrival}
        for name in ("prompt_len", "output_len", "max_output"):
            value = getattr(self, name)
            if value is None:  # only max_output may be None
                value = arrays["output_len"]
            arr = np.asarray(value)
            if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"{name} must have an integer dtype, got {arr.dtype}")
            if arr.shape != arrival.shape:
                raise ValueError(f"{name} must have shape {arrival.shape} like arrival, got {arr.shape}")
            if arr.min() < 1:
                raise ValueError(f"{name} must be >= 1, got {int(arr.min())}")
            arrays[name] = arr.astype(np.int64)
        short = arrays["max_output"] < arrays["output_len"]
        if short.any():
            i = int(np.argmax(short))
            raise ValueError(
                f"max_output must be >= output_len, got max_output={int(arrays['max_output'][i])} "
                f"< output_len={int(arrays['output_len'][i])} for request {i}"
            )
        for name, arr in arrays.items():
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.arrival.size)


def make_requests(
    n: int,
    rng: np.random.Generator | int,
    *,
    rate: float | None = None,
    mean_prompt: float = 161.0,
    mean_output: float = 338.0,
    sigma: float = 1.0,
    max_len: int = 2048,
    max_prompt: int = 1024,
) -> Requests:
    r"""A random workload of ``n`` requests with ShareGPT-like mixed lengths.

    Parameters
    ----------
    n : int
        Number of requests (>= 1).
    rng : numpy.random.Generator or int
        The randomness (an int is a seed for ``np.random.default_rng``).
    rate : float, optional
        Mean arrivals per unit of model time (> 0): a Poisson process, so the gaps are
        exponential. ``None`` (default): every request arrives at time 0 (an offline batch).
    mean_prompt, mean_output : float, default 161.0 and 338.0
        Means of the lognormal prompt and output lengths before clipping (> 0). The defaults
        are the ShareGPT averages reported by the vLLM paper (Kwon et al., 2023, §6.1).
    sigma : float, default 1.0
        Shape of both lognormals (>= 0; 0 makes every length equal to its mean): larger is a
        wider spread of lengths.
    max_len : int, default 2048
        Context limit: ``prompt + output <= max_len``, and each request's ``max_output`` is
        ``max_len - prompt`` (a server must be ready for a request to use the whole context).
    max_prompt : int, default 1024
        Longest prompt (1 <= max_prompt < max_len); vLLM's ShareGPT benchmark drops longer
        prompts, we clip them.

    Returns
    -------
    Requests
        Sorted by arrival. Lengths are rounded and clipped: prompt to [1, max_prompt], output
        to [1, max_len - prompt], so the means come out slightly below the parameters.

    Raises
    ------
    TypeError, ValueError
        On a wrong type or a value out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.batching import make_requests
    >>> reqs = make_requests(1000, np.random.default_rng(0))
    >>> print(len(reqs), int(reqs.prompt_len.mean()), int(reqs.output_len.mean()), int(reqs.max_output.min()))
    1000 146 327 1024
    """
    n = _checks.integer(n, "n", minimum=1)
    rng = _rng(rng)
    max_len = _checks.integer(max_len, "max_len", minimum=2)
    max_prompt = _checks.integer(max_prompt, "max_prompt", minimum=1)
    if max_prompt >= max_len:
        raise ValueError(f"max_prompt must be < max_len={max_len}, got {max_prompt}")
    means = {}
    for name, value in (("mean_prompt", mean_prompt), ("mean_output", mean_output)):
        means[name] = _checks.real(value, name)
        if not (means[name] > 0 and math.isfinite(means[name])):
            raise ValueError(f"{name} must be a finite number > 0, got {value}")
    sigma = _checks.real(sigma, "sigma")
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    if rate is not None:
        rate = _checks.real(rate, "rate")
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a finite number > 0 (or None), got {rate}")
    # A lognormal with E = m has mu = ln m - sigma^2 / 2.
    mu_p = math.log(means["mean_prompt"]) - sigma**2 / 2
    mu_o = math.log(means["mean_output"]) - sigma**2 / 2
    prompt = np.clip(np.rint(rng.lognormal(mu_p, sigma, n)), 1, max_prompt).astype(np.int64)
    output = np.clip(np.rint(rng.lognormal(mu_o, sigma, n)), 1, max_len - prompt).astype(np.int64)
    if rate is None:
        arrival = np.zeros(n)
    else:
        arrival = np.cumsum(rng.exponential(1.0 / rate, n))
    return Requests(arrival, prompt, output, max_len - prompt)


@dataclass(frozen=True)
class BatchingResult:
    r"""What a batching simulation produced: per-request times and per-step figures.

    Per-request arrays have shape (n,), in the order of the :class:`Requests` given; per-step
    arrays have shape (n_steps,).

    Attributes
    ----------
    policy : str
        ``"static"`` or ``"continuous"``.
    kv_budget, max_batch : int
        The limits the simulation ran under.
    arrival : ndarray of float, per request
        Arrival times.
    first_token_time, finish_time : ndarray of float, per request
        End of the step that produced the request's first / last token.
    arrival_step : ndarray of int, per request
        First step starting at or after the arrival (the first the request could join).
    first_token_step, finish_step : ndarray of int, per request
        Steps that produced the first / last token.
    n_generated : ndarray of int, per request
        Tokens produced for the request, counted by the simulation (it must equal
        ``output_len``: the conservation check).
    n_preempted : ndarray of int, per request
        Times the request was preempted (always 0 for static batching).
    step_start, step_time : ndarray of float, per step
        When the step started and how long it took (:class:`StepCost`). A gap between one
        step's end and the next one's start is idle time waiting for arrivals.
    batch_size : ndarray of int, per step
        Sequences computed in the step (prefilling or decoding).
    prefill_tokens : ndarray of int, per step
        Prompt (and recomputed) tokens processed.
    decode_seqs : ndarray of int, per step
        Sequences that decoded one token.
    new_tokens : ndarray of int, per step
        Output tokens produced (one per sequence computed).
    kv_tokens : ndarray of int, per step
        KV-cache slots holding a token after the step.
    kv_reserved : ndarray of int, per step
        KV-cache slots reserved after the step (<= ``kv_budget``).

    Examples
    --------
    The same three requests under both policies: with continuous batching the third one
    takes the slot the first frees after one step instead of waiting for the whole batch.

    >>> import numpy as np
    >>> from llmfund.batching import Requests, continuous_batching, static_batching
    >>> reqs = Requests(arrival=[0, 0, 0], prompt_len=[4, 4, 4], output_len=[1, 5, 2])
    >>> for res in (static_batching(reqs, max_batch=2, kv_budget=100),
    ...             continuous_batching(reqs, max_batch=2, kv_budget=100, block_size=4)):
    ...     print(res.policy, res.n_steps, res.n_generated, np.round(res.latency, 1), round(res.throughput, 4))
    static 7 [1 5 2] [10.8 51.2 71.7] 0.1116
    continuous 5 [1 5 2] [10.8 51.7 31.5] 0.1547
    """

    policy: str
    kv_budget: int
    max_batch: int
    arrival: np.ndarray
    first_token_time: np.ndarray
    finish_time: np.ndarray
    arrival_step: np.ndarray
    first_token_step: np.ndarray
    finish_step: np.ndarray
    n_generated: np.ndarray
    n_preempted: np.ndarray
    step_start: np.ndarray
    step_time: np.ndarray
    batch_size: np.ndarray
    prefill_tokens: np.ndarray
    decode_seqs: np.ndarray
    new_tokens: np.ndarray
    kv_tokens: np.ndarray
    kv_reserved: np.ndarray

    @property
    def n_steps(self) -> int:
        """Steps run (model forward passes)."""
        return int(self.step_time.size)

    @property
    def total_time(self) -> float:
        """Model time from 0 to the end of the last step (idle gaps included)."""
        return float(self.step_start[-1] + self.step_time[-1])

    @property
    def latency(self) -> np.ndarray:
        """Per request, ``finish_time - arrival`` (model time)."""
        return self.finish_time - self.arrival

    @property
    def latency_steps(self) -> np.ndarray:
        """Per request, steps from the first it could join to the one that finished it, inclusive."""
        return self.finish_step - self.arrival_step + 1

    @property
    def ttft(self) -> np.ndarray:
        """Per request, time to first token ``first_token_time - arrival``."""
        return self.first_token_time - self.arrival

    @property
    def throughput(self) -> float:
        """Output tokens per unit of model time over the whole run."""
        return float(self.new_tokens.sum()) / self.total_time

    @property
    def tokens_per_step(self) -> float:
        """Mean output tokens per step (the mean batch size)."""
        return float(self.new_tokens.sum()) / self.n_steps

    @property
    def kv_utilisation(self) -> np.ndarray:
        """Per step, the fraction of the KV budget holding tokens, ``kv_tokens / kv_budget``."""
        return self.kv_tokens / self.kv_budget

    def summary(self) -> dict[str, float]:
        """The headline numbers, as plain floats: throughput, latencies, TTFT, steps, memory."""
        return {
            "throughput": self.throughput,
            "tokens_per_step": self.tokens_per_step,
            "mean_latency": float(self.latency.mean()),
            "p90_latency": float(np.percentile(self.latency, 90)),
            "mean_ttft": float(self.ttft.mean()),
            "n_steps": float(self.n_steps),
            "total_time": self.total_time,
            "mean_kv_utilisation": float(self.kv_utilisation.mean()),
            "preemptions": float(self.n_preempted.sum()),
        }


def static_batching(
    requests: Requests,
    *,
    max_batch: int = 64,
    kv_budget: int = 65536,
    cost: StepCost | None = None,
    progress: Progress | None = None,
) -> BatchingResult:
    r"""Simulate static (request-level) batching.

    Parameters
    ----------
    requests : Requests
        The workload.
    max_batch : int, default 64
        Most sequences in a batch (>= 1).
    kv_budget : int, default 65536
        KV-cache slots available, in tokens (>= 1).
    cost : StepCost, optional
        The step-time model (default ``StepCost()``).
    progress : callable(done, total), optional
        Called after each batch with the number of finished requests and ``n``.

    Returns
    -------
    BatchingResult

    Raises
    ------
    TypeError
        If ``requests`` is not :class:`Requests` or ``cost`` not :class:`StepCost`.
    ValueError
        If a size is < 1, or a request's reservation ``prompt_len + max_output`` exceeds
        ``kv_budget`` (it could never run).

    Notes
    -----
    When the engine is free it takes the waiting requests that have arrived, first come
    first served, up to ``max_batch`` and while their reservations fit in ``kv_budget``
    (it does not wait to fill the batch; with nothing waiting it idles until the next
    arrival). Each request reserves ``prompt_len + max_output`` contiguous slots until the
    whole batch ends, as FasterTransformer-style servers do. Step 1 prefills every prompt and
    produces each request's first token; each later step decodes one token for every
    unfinished request; the batch ends with its longest request. A finished request's slot
    is idle: it is not computed (more generous than padded implementations such as
    ``model.generate`` on a padded batch, which keep computing it) but no one can use it.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.batching import Requests, static_batching
    >>> reqs = Requests(arrival=[0, 0, 0], prompt_len=[4, 4, 4], output_len=[1, 5, 2])
    >>> res = static_batching(reqs, max_batch=2, kv_budget=100)
    >>> print(res.batch_size, res.finish_step)
    [2 1 1 1 1 1 1] [0 4 6]
    """
    req = _check_requests(requests)
    max_batch = _checks.integer(max_batch, "max_batch", minimum=1)
    kv_budget = _checks.integer(kv_budget, "kv_budget", minimum=1)
    cost = _check_cost(cost)
    reserve = req.prompt_len + req.max_output
    if reserve.max() > kv_budget:
        i = int(np.argmax(reserve))
        raise ValueError(
            f"kv_budget={kv_budget} cannot hold request {i}: static batching reserves "
            f"prompt_len + max_output = {int(reserve[i])} slots"
        )
    n = len(req)
    order = np.argsort(req.arrival, kind="stable")
    arrival_sorted = req.arrival[order]
    out = _RequestLog(n)
    steps: list[dict[str, np.ndarray]] = []
    clock, n_steps, i = 0.0, 0, 0
    while i < n:
        clock = max(clock, float(arrival_sorted[i]))  # idle until the next arrival
        arrived = int(np.searchsorted(arrival_sorted, clock, side="right"))
        cand = order[i : min(arrived, i + max_batch)]
        fits = int(np.searchsorted(np.cumsum(reserve[cand]), kv_budget, side="right"))
        batch = cand[:fits]  # >= 1 request: each fits alone (checked above)
        p, o = req.prompt_len[batch], req.output_len[batch]
        n_batch_steps = int(o.max())
        s = np.arange(n_batch_steps)
        # active[s, r]: request r computes a token at step s of the batch (s = 0 is prefill).
        active = s[:, None] < o[None, :]
        decoding = active & (s[:, None] > 0)
        # After step s a request holds p + min(s, o - 1) tokens (decode step s appends token s).
        held = p[None, :] + np.minimum(s[:, None], o[None, :] - 1)
        prefill = np.where(s == 0, p.sum(), 0)
        decode = decoding.sum(axis=1)
        context = np.where(decoding, held, 0).sum(axis=1)
        dt = cost(prefill, decode, context).astype(np.float64)
        start = clock + np.concatenate(([0.0], np.cumsum(dt)[:-1]))
        end = start + dt
        out.first_token_step[batch] = n_steps
        out.first_token_time[batch] = end[0]
        out.finish_step[batch] = n_steps + o - 1
        out.finish_time[batch] = end[o - 1]
        out.n_generated[batch] = active.sum(axis=0)
        steps.append(
            {
                "step_start": start,
                "step_time": dt,
                "batch_size": active.sum(axis=1),
                "prefill_tokens": prefill,
                "decode_seqs": decode,
                "new_tokens": active.sum(axis=1),
                "kv_tokens": held.sum(axis=1),
                "kv_reserved": np.full(n_batch_steps, reserve[batch].sum()),
            }
        )
        clock = float(end[-1])
        n_steps += n_batch_steps
        i += batch.size
        if progress is not None:
            progress(i, n)
    per_step = {key: np.concatenate([b[key] for b in steps]) for key in steps[0]}
    return _result("static", req, kv_budget, max_batch, out, per_step)


def continuous_batching(
    requests: Requests,
    *,
    max_batch: int = 64,
    kv_budget: int = 65536,
    block_size: int = 16,
    cost: StepCost | None = None,
    progress: Progress | None = None,
) -> BatchingResult:
    r"""Simulate continuous (iteration-level) batching with a paged KV cache.

    Parameters
    ----------
    requests : Requests
        The workload.
    max_batch : int, default 64
        Most sequences computed in one step (>= 1).
    kv_budget : int, default 65536
        KV-cache slots available, in tokens (>= ``block_size``); the pool has
        ``kv_budget // block_size`` blocks.
    block_size : int, default 16
        Tokens per KV block (>= 1); 1 is token-granular allocation.
    cost : StepCost, optional
        The step-time model (default ``StepCost()``).
    progress : callable(done, total), optional
        Called after every step that finishes a request, with the number of finished
        requests and ``n``.

    Returns
    -------
    BatchingResult

    Raises
    ------
    TypeError
        If ``requests`` is not :class:`Requests` or ``cost`` not :class:`StepCost`.
    ValueError
        If a size is out of range, or a request alone would need more blocks than the pool
        has (``ceil((prompt_len + output_len - 1) / block_size)``: it could never finish).

    Notes
    -----
    At every step, as vLLM's scheduler:

    1. Requests that finished at the previous step have left, their blocks freed.
    2. Every running request will decode one token and needs
       $\lceil (p + g) / B \rceil$ blocks ($p$ prompt tokens, $g$ generated so far: the step
       writes the KV of token $g$). If the running requests together need more blocks than
       the pool has, the most recently admitted one is **preempted**: its blocks are freed
       and it goes back to the head of the queue, keeping its generated tokens; when it is
       readmitted, its prompt and those tokens are prefilled again (vLLM's recompute
       preemption). No request is admitted in a step that preempted.
    3. Waiting requests that have arrived join, first come first served (the queue stops at
       the first that does not fit), while the batch has fewer than ``max_batch`` sequences
       and the pool has room for $\lceil (p + g) / B \rceil$ blocks for their prefill.
    4. The step runs: the new requests' prefill (producing their next token) and the running
       requests' decode in the same step (no chunked prefill), its time given by ``cost``.

    Memory is counted in whole blocks, so ``kv_reserved - kv_tokens`` is the internal
    fragmentation (under ``block_size`` slots per sequence). vLLM also keeps a small
    watermark of free blocks and can swap preempted requests to host memory instead of
    recomputing them; neither is modelled.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.batching import Requests, continuous_batching
    >>> reqs = Requests(arrival=[0, 0, 0], prompt_len=[4, 4, 4], output_len=[1, 5, 2])
    >>> res = continuous_batching(reqs, max_batch=2, kv_budget=100, block_size=4)
    >>> print(res.batch_size, res.finish_step)
    [2 2 2 1 1] [0 4 2]
    """
    req = _check_requests(requests)
    max_batch = _checks.integer(max_batch, "max_batch", minimum=1)
    block_size = _checks.integer(block_size, "block_size", minimum=1)
    kv_budget = _checks.integer(kv_budget, "kv_budget", minimum=block_size)
    cost = _check_cost(cost)
    n_blocks = kv_budget // block_size
    peak = -(-(req.prompt_len + req.output_len - 1) // block_size)
    if peak.max() > n_blocks:
        i = int(np.argmax(peak))
        raise ValueError(
            f"kv_budget={kv_budget} ({n_blocks} blocks of {block_size}) cannot hold request {i}, "
            f"which needs {int(peak[i])} blocks at its longest"
        )
    n = len(req)
    order = np.argsort(req.arrival, kind="stable")
    arrival = req.arrival
    p, o = req.prompt_len, req.output_len
    gen = np.zeros(n, dtype=np.int64)  # tokens generated so far
    out = _RequestLog(n)
    cols: dict[str, list] = {key: [] for key in _STEP_KEYS}
    running = np.zeros(0, dtype=np.int64)  # in admission order (preemption takes the last)
    waiting: deque[int] = deque()
    clock, ptr, done, step = 0.0, 0, 0, 0
    while done < n:
        while ptr < n and arrival[order[ptr]] <= clock:
            waiting.append(int(order[ptr]))
            ptr += 1
        if running.size == 0 and not waiting:
            clock = float(arrival[order[ptr]])  # idle until the next arrival
            continue
        # 2. Blocks the running requests need for this step; preempt the newest until they fit.
        need = -(-(p[running] + gen[running]) // block_size)
        total = int(need.sum())
        preempted = total > n_blocks
        if preempted:
            keep = int(np.searchsorted(np.cumsum(need), n_blocks, side="right"))
            for victim in running[keep:][::-1]:  # newest first, so the oldest ends up in front
                waiting.appendleft(int(victim))
            out.n_preempted[running[keep:]] += 1
            running, need = running[:keep], need[:keep]
            total = int(need.sum())
        # 3. Admission, first come first served, only in a step that did not preempt.
        admitted: list[int] = []
        if not preempted:
            free_slots = max_batch - running.size
            while waiting and len(admitted) < free_slots:
                head = waiting[0]
                blocks = -(-(int(p[head]) + int(gen[head])) // block_size)
                if total + blocks > n_blocks:
                    break
                admitted.append(waiting.popleft())
                total += blocks
        new = np.asarray(admitted, dtype=np.int64)
        # 4. The step: prefill of the new requests (prompt + any recomputed tokens), decode of
        # the running ones; after it, every scheduled request holds p + g tokens.
        held_run = p[running] + gen[running]
        held_new = p[new] + gen[new]
        prefill, decode, context = int(held_new.sum()), int(running.size), int(held_run.sum())
        dt = float(cost(prefill, decode, context))
        scheduled = np.concatenate((running, new))
        first = scheduled[gen[scheduled] == 0]
        gen[scheduled] += 1
        end = clock + dt
        out.first_token_step[first] = step
        out.first_token_time[first] = end
        finished = gen[scheduled] == o[scheduled]
        gone = scheduled[finished]
        out.finish_step[gone] = step
        out.finish_time[gone] = end
        for key, value in zip(
            _STEP_KEYS,
            (clock, dt, scheduled.size, prefill, decode, scheduled.size,
             int(held_run.sum() + held_new.sum()), total * block_size),
        ):
            cols[key].append(value)
        running = scheduled[~finished]
        clock, step = end, step + 1
        if gone.size:
            done += int(gone.size)
            if progress is not None:
                progress(done, n)
    out.n_generated[:] = gen
    per_step = {key: np.asarray(value) for key, value in cols.items()}
    return _result("continuous", req, kv_budget, max_batch, out, per_step)


_STEP_KEYS = (
    "step_start", "step_time", "batch_size", "prefill_tokens", "decode_seqs", "new_tokens",
    "kv_tokens", "kv_reserved",
)


class _RequestLog:
    """Per-request outcomes, filled in by a simulation."""

    def __init__(self, n: int) -> None:
        self.first_token_time = np.full(n, np.nan)
        self.finish_time = np.full(n, np.nan)
        self.first_token_step = np.full(n, -1, dtype=np.int64)
        self.finish_step = np.full(n, -1, dtype=np.int64)
        self.n_generated = np.zeros(n, dtype=np.int64)
        self.n_preempted = np.zeros(n, dtype=np.int64)


def _result(
    policy: str, req: Requests, kv_budget: int, max_batch: int, log: _RequestLog,
    per_step: dict[str, np.ndarray],
) -> BatchingResult:
    ints = {key: per_step[key].astype(np.int64) for key in _STEP_KEYS[2:]}
    step_start = per_step["step_start"].astype(np.float64)
    # The first step a request could join: the first that starts at or after its arrival.
    arrival_step = np.searchsorted(step_start, req.arrival, side="left").astype(np.int64)
    return BatchingResult(
        policy=policy,
        kv_budget=kv_budget,
        max_batch=max_batch,
        arrival=req.arrival.copy(),
        first_token_time=log.first_token_time,
        finish_time=log.finish_time,
        arrival_step=arrival_step,
        first_token_step=log.first_token_step,
        finish_step=log.finish_step,
        n_generated=log.n_generated,
        n_preempted=log.n_preempted,
        step_start=step_start,
        step_time=per_step["step_time"].astype(np.float64),
        **ints,
    )


def _check_requests(requests: Any) -> Requests:
    if not isinstance(requests, Requests):
        raise TypeError(f"requests must be a Requests, got {type(requests).__name__}")
    return requests


def _check_cost(cost: Any) -> StepCost:
    if cost is None:
        return StepCost()
    if not isinstance(cost, StepCost):
        raise TypeError(f"cost must be a StepCost, got {type(cost).__name__}")
    return cost


def _rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or an integer seed, got {type(rng).__name__}")
