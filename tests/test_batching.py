"""Tests for llmfund.batching: static vs continuous batching simulations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfund.batching import (
    BatchingResult,
    Requests,
    StepCost,
    continuous_batching,
    make_requests,
    static_batching,
)

POLICIES = {
    "static": lambda reqs, **kw: static_batching(reqs, **{k: v for k, v in kw.items() if k != "block_size"}),
    "continuous": continuous_batching,
}


def check_invariants(res: BatchingResult, reqs: Requests, *, max_batch: int, kv_budget: int,
                     block_size: int | None, cost: StepCost) -> None:
    """Conservation, budgets, causality in time, and the cost model, for any policy."""
    # Every request finishes with exactly its output length; every token is counted once.
    np.testing.assert_array_equal(res.n_generated, reqs.output_len)
    assert res.new_tokens.sum() == reqs.output_len.sum()
    assert (res.finish_step >= res.first_token_step).all()
    assert (res.finish_step - res.first_token_step + 1 >= reqs.output_len).all()
    # No step over the batch size or the memory budget; memory counted in whole blocks.
    assert (res.batch_size >= 1).all() and (res.batch_size <= max_batch).all()
    assert (res.new_tokens == res.batch_size).all()
    assert (res.kv_reserved <= kv_budget).all()
    assert (res.kv_tokens <= res.kv_reserved).all()
    if block_size is not None:
        assert (res.kv_reserved % block_size == 0).all()
        assert (res.kv_reserved - res.kv_tokens < block_size * res.batch_size).all()
    # Time runs forward; nothing is computed before it arrives.
    assert (np.diff(res.step_start) >= res.step_time[:-1] - 1e-9).all()
    first_start = res.step_start[res.first_token_step]
    assert (first_start >= reqs.arrival).all()
    assert (res.ttft > 0).all() and (res.latency >= res.ttft).all()
    assert (res.arrival_step <= res.first_token_step).all()
    np.testing.assert_allclose(res.finish_time, res.step_start[res.finish_step] + res.step_time[res.finish_step])
    # Step times are the documented cost model.
    context_ok = res.step_time >= cost(res.prefill_tokens, res.decode_seqs, 0) - 1e-9
    assert context_ok.all()
    assert (res.prefill_tokens + res.decode_seqs >= res.batch_size).all()


# ---------------------------------------------------------------- worked examples
def test_static_by_hand():
    cost = StepCost(c0=1.0, c_prefill=0.5, c_decode=0.25, c_context=0.0)
    reqs = Requests(arrival=[0.0, 0.0, 0.0], prompt_len=[4, 2, 4], output_len=[1, 3, 2])
    res = static_batching(reqs, max_batch=2, kv_budget=100, cost=cost)
    # Batch {0, 1}: prefill 6 tokens (4.0), then 2 decode steps of request 1 (1.25 each).
    # Batch {2}: prefill 4 tokens (3.0), then 1 decode step (1.25).
    np.testing.assert_allclose(res.step_time, [4.0, 1.25, 1.25, 3.0, 1.25])
    np.testing.assert_array_equal(res.batch_size, [2, 1, 1, 1, 1])
    np.testing.assert_array_equal(res.first_token_step, [0, 0, 3])
    np.testing.assert_array_equal(res.finish_step, [0, 2, 4])
    np.testing.assert_allclose(res.ttft, [4.0, 4.0, 9.5])
    np.testing.assert_allclose(res.latency, [4.0, 6.5, 10.75])
    # Reserved: prompt + max_output (= output_len here) per request, until the batch ends.
    np.testing.assert_array_equal(res.kv_reserved, [10, 10, 10, 6, 6])
    np.testing.assert_array_equal(res.kv_tokens, [6, 7, 8, 4, 5])  # request 0 keeps its 4
    assert res.total_time == pytest.approx(10.75)
    assert res.throughput == pytest.approx(6 / 10.75)


def test_continuous_by_hand():
    cost = StepCost(c0=1.0, c_prefill=0.5, c_decode=0.25, c_context=0.0)
    reqs = Requests(arrival=[0.0, 0.0, 0.0], prompt_len=[4, 2, 4], output_len=[1, 3, 2])
    res = continuous_batching(reqs, max_batch=2, kv_budget=100, block_size=1, cost=cost)
    # Step 0: prefill 0 and 1; request 0 is done. Step 1: decode 1 + prefill 2.
    # Step 2: decode 1 and 2, both done.
    np.testing.assert_allclose(res.step_time, [4.0, 3.25, 1.5])
    np.testing.assert_array_equal(res.batch_size, [2, 2, 2])
    np.testing.assert_array_equal(res.prefill_tokens, [6, 4, 0])
    np.testing.assert_array_equal(res.decode_seqs, [0, 1, 2])
    np.testing.assert_array_equal(res.finish_step, [0, 2, 2])
    np.testing.assert_allclose(res.ttft, [4.0, 4.0, 7.25])
    np.testing.assert_array_equal(res.kv_tokens, [6, 7, 9])  # {4, 2} -> {3, 4} -> {4, 5}
    np.testing.assert_array_equal(res.latency_steps, [1, 3, 3])


def test_continuous_counts_whole_blocks():
    reqs = Requests(arrival=[0.0], prompt_len=[5], output_len=[4])
    res = continuous_batching(reqs, max_batch=1, kv_budget=64, block_size=4)
    np.testing.assert_array_equal(res.kv_tokens, [5, 6, 7, 8])
    np.testing.assert_array_equal(res.kv_reserved, [8, 8, 8, 8])


def test_late_arrivals_idle_and_join():
    cost = StepCost(c0=1.0, c_prefill=0.0, c_decode=0.0, c_context=0.0)
    reqs = Requests(arrival=[0.0, 2.5, 10.0], prompt_len=[3, 3, 3], output_len=[5, 2, 1])
    for name, policy in POLICIES.items():
        res = policy(reqs, max_batch=4, kv_budget=100, block_size=1, cost=cost)
        check_invariants(res, reqs, max_batch=4, kv_budget=100, block_size=1 if name == "continuous" else None, cost=cost)
        # Nobody else runs at time 5..10: request 2 starts exactly on arrival.
        assert res.step_start[res.first_token_step[2]] == pytest.approx(10.0)
    cont = continuous_batching(reqs, max_batch=4, kv_budget=100, block_size=1, cost=cost)
    stat = static_batching(reqs, max_batch=4, kv_budget=100, cost=cost)
    # Continuous: request 1 joins at step 3 (time 3); static: it waits for the first batch.
    assert cont.first_token_step[1] == 3 and cont.ttft[1] == pytest.approx(1.5)
    assert stat.first_token_step[1] == 5 and stat.ttft[1] == pytest.approx(3.5)


def test_unsorted_arrivals_are_served_in_arrival_order():
    reqs = Requests(arrival=[5.0, 0.0], prompt_len=[3, 3], output_len=[2, 2])
    for policy in POLICIES.values():
        res = policy(reqs, max_batch=1, kv_budget=100, block_size=1)
        assert res.first_token_step[1] == 0 and res.first_token_step[0] == 2
        np.testing.assert_array_equal(res.arrival, [5.0, 0.0])


# ---------------------------------------------------------------- memory and preemption
def test_static_batch_limited_by_reservation():
    reqs = Requests(arrival=np.zeros(6), prompt_len=np.full(6, 10), output_len=np.full(6, 5),
                    max_output=np.full(6, 90))
    res = static_batching(reqs, max_batch=6, kv_budget=250)
    assert res.batch_size.max() == 2  # 100 slots reserved each: only 2 fit in 250


def test_continuous_preempts_under_memory_pressure_and_still_conserves():
    reqs = make_requests(60, np.random.default_rng(3), mean_prompt=30, mean_output=60, max_len=256, max_prompt=100)
    cost = StepCost()
    res = continuous_batching(reqs, max_batch=32, kv_budget=512, block_size=8, cost=cost)
    assert res.n_preempted.sum() > 0
    check_invariants(res, reqs, max_batch=32, kv_budget=512, block_size=8, cost=cost)
    # A preempted request is recomputed: its prompt and generated tokens are prefilled again.
    assert res.prefill_tokens.sum() > reqs.prompt_len.sum()
    again = continuous_batching(reqs, max_batch=32, kv_budget=100_000, block_size=8, cost=cost)
    assert again.n_preempted.sum() == 0
    assert again.prefill_tokens.sum() == reqs.prompt_len.sum()


def test_block_size_one_never_wastes_memory():
    reqs = make_requests(40, 5, mean_prompt=20, mean_output=30, max_len=200, max_prompt=100)
    res = continuous_batching(reqs, max_batch=8, kv_budget=2000, block_size=1)
    np.testing.assert_array_equal(res.kv_tokens, res.kv_reserved)


# ---------------------------------------------------------------- the lesson's claims
@pytest.mark.parametrize("oracle", [False, True])
def test_continuous_beats_static_on_a_mixed_workload(oracle):
    reqs = make_requests(200, np.random.default_rng(0))
    if oracle:  # static reserves exactly what each request will use: only scheduling differs
        reqs = Requests(reqs.arrival, reqs.prompt_len, reqs.output_len)
    stat = static_batching(reqs, max_batch=32, kv_budget=65536)
    cont = continuous_batching(reqs, max_batch=32, kv_budget=65536, block_size=16)
    assert cont.throughput > 1.2 * stat.throughput
    assert cont.latency.mean() < stat.latency.mean()
    assert cont.n_steps < stat.n_steps


def test_identical_seeds_identical_results_different_seeds_differ():
    def run(seed: int) -> BatchingResult:
        return continuous_batching(make_requests(100, seed, rate=0.01), max_batch=16, kv_budget=8192)

    a, b, c = run(7), run(7), run(8)
    for name in ("finish_time", "first_token_step", "step_time", "kv_tokens", "batch_size"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.finish_time, c.finish_time)
    r1 = make_requests(50, np.random.default_rng(1), rate=1.0)
    r2 = make_requests(50, 1, rate=1.0)
    np.testing.assert_array_equal(r1.arrival, r2.arrival)
    np.testing.assert_array_equal(r1.output_len, r2.output_len)


def test_make_requests_respects_limits():
    reqs = make_requests(500, 0, rate=2.0, max_len=300, max_prompt=200)
    assert (reqs.prompt_len >= 1).all() and (reqs.prompt_len <= 200).all()
    assert (reqs.prompt_len + reqs.output_len <= 300).all()
    np.testing.assert_array_equal(reqs.max_output, 300 - reqs.prompt_len)
    assert (np.diff(reqs.arrival) >= 0).all()
    assert 400 < reqs.arrival[-1] * 2.0 < 600  # ~ n / rate
    same = make_requests(3, 0, sigma=0.0, mean_prompt=10, mean_output=20)
    np.testing.assert_array_equal(same.prompt_len, [10, 10, 10])
    np.testing.assert_array_equal(same.output_len, [20, 20, 20])


def test_progress_callback_and_inputs_not_modified():
    arrival = np.zeros(5)
    prompt = np.array([3, 4, 5, 6, 7])
    output = np.array([2, 1, 4, 3, 2])
    reqs = Requests(arrival, prompt, output)
    prompt[0] = 99  # Requests holds its own read-only copies
    assert reqs.prompt_len[0] == 3 and not reqs.prompt_len.flags.writeable
    for policy in POLICIES.values():
        calls: list[tuple[int, int]] = []
        policy(reqs, max_batch=2, kv_budget=100, block_size=1, progress=lambda d, n: calls.append((d, n)))
        assert calls[-1] == (5, 5)
        assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:]))


# ---------------------------------------------------------------- property test
@settings(max_examples=60, deadline=None)
@given(
    reqs=st.lists(
        st.tuples(st.floats(0, 30), st.integers(1, 12), st.integers(1, 12), st.integers(0, 6)),
        min_size=1, max_size=12,
    ),
    max_batch=st.integers(1, 5),
    block_size=st.integers(1, 6),
    extra=st.integers(0, 60),
)
def test_invariants_hold_for_random_workloads(reqs, max_batch, block_size, extra):
    arrival = np.array([r[0] for r in reqs])
    prompt = np.array([r[1] for r in reqs])
    output = np.array([r[2] for r in reqs])
    max_output = output + np.array([r[3] for r in reqs])
    requests = Requests(arrival, prompt, output, max_output)
    cost = StepCost(c0=1.0, c_prefill=0.01, c_decode=0.1, c_context=0.001)
    # Just enough memory for the largest request, plus some: forces preemption sometimes.
    static_budget = int((prompt + max_output).max()) + extra
    stat = static_batching(requests, max_batch=max_batch, kv_budget=static_budget, cost=cost)
    check_invariants(stat, requests, max_batch=max_batch, kv_budget=static_budget, block_size=None, cost=cost)
    assert (stat.finish_step - stat.first_token_step + 1 == output).all()  # never preempted
    cont_budget = block_size * (int((-(-(prompt + output - 1) // block_size)).max()) + extra // block_size)
    cont = continuous_batching(requests, max_batch=max_batch, kv_budget=cont_budget, block_size=block_size, cost=cost)
    check_invariants(cont, requests, max_batch=max_batch, kv_budget=cont_budget, block_size=block_size, cost=cost)


# ---------------------------------------------------------------- bad input
def test_requests_errors():
    with pytest.raises(ValueError, match="arrival must be >= 0"):
        Requests([-1.0], [3], [2])
    with pytest.raises(ValueError, match="arrival must be finite"):
        Requests([np.inf], [3], [2])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        Requests([], [], [])
    with pytest.raises(TypeError, match="prompt_len must have an integer dtype"):
        Requests([0.0], [3.0], [2])
    with pytest.raises(ValueError, match="output_len must have shape"):
        Requests([0.0, 1.0], [3, 3], [2])
    with pytest.raises(ValueError, match="output_len must be >= 1"):
        Requests([0.0], [3], [0])
    with pytest.raises(ValueError, match="max_output must be >= output_len"):
        Requests([0.0], [3], [5], [4])
    with pytest.raises(ValueError, match="NaN"):
        Requests([np.nan], [3], [2])


def test_simulation_errors():
    reqs = Requests([0.0], [10], [5], [20])
    with pytest.raises(TypeError, match="requests must be a Requests"):
        static_batching([1, 2, 3])
    with pytest.raises(TypeError, match="requests must be a Requests"):
        continuous_batching({"prompt_len": [3]})
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        static_batching(reqs, max_batch=0)
    with pytest.raises(TypeError, match="max_batch"):
        continuous_batching(reqs, max_batch=2.0)
    with pytest.raises(ValueError, match="reserves prompt_len \\+ max_output = 30"):
        static_batching(reqs, kv_budget=29)
    with pytest.raises(ValueError, match="needs 4 blocks"):
        continuous_batching(reqs, kv_budget=12, block_size=4)  # 14 tokens at most
    with pytest.raises(ValueError, match="kv_budget must be >= 16"):
        continuous_batching(reqs, kv_budget=8, block_size=16)
    with pytest.raises(TypeError, match="cost must be a StepCost"):
        continuous_batching(reqs, cost=lambda *a: 1.0)
    static_batching(reqs, kv_budget=30)  # the limits themselves are fine
    continuous_batching(reqs, kv_budget=16, block_size=4)


def test_make_requests_and_cost_errors():
    with pytest.raises(TypeError, match="rng"):
        make_requests(5, 1.5)
    with pytest.raises(ValueError, match="n must be >= 1"):
        make_requests(0, 0)
    with pytest.raises(ValueError, match="rate must be"):
        make_requests(5, 0, rate=0.0)
    with pytest.raises(ValueError, match="max_prompt must be < max_len"):
        make_requests(5, 0, max_len=100, max_prompt=100)
    with pytest.raises(ValueError, match="mean_output"):
        make_requests(5, 0, mean_output=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        make_requests(5, 0, sigma=float("nan"))
    with pytest.raises(ValueError, match="c0 must be a finite number > 0"):
        StepCost(c0=0.0)
    with pytest.raises(ValueError, match="c_decode"):
        StepCost(c_decode=-1.0)
    with pytest.raises(TypeError, match="c_prefill"):
        StepCost(c_prefill="fast")
