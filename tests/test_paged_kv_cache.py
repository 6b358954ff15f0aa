"""Tests for llmfund.paged_kv_cache: block allocation, sharing, paged attention, memory accounting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from llmfund.attention import scaled_dot_product_attention
from llmfund.kv_cache import KVCache
from llmfund.paged_kv_cache import (
    OutOfBlocksError,
    PagedKVCache,
    paged_attention,
    simulate_kv_memory,
)

H, D = 2, 3  # small KV heads and head_dim for the bookkeeping tests


def kv(rng: np.random.Generator, t: int, h: int = H, d: int = D, dtype=np.float64):
    return (rng.standard_normal((h, t, d)).astype(dtype), rng.standard_normal((h, t, d)).astype(dtype))


def snapshot(cache: PagedKVCache) -> dict:
    """Everything observable about a cache, to check that a failed call changed nothing."""
    return {
        "tables": {s: cache.block_table(s).tolist() for s in cache.sequences},
        "lens": {s: cache.seq_len(s) for s in cache.sequences},
        "refcounts": cache.refcounts.tolist(),
        "free": cache.free_block_ids.tolist(),
        "k": cache.k_blocks.copy(),
        "v": cache.v_blocks.copy(),
        "stats": cache.stats(),
    }


def assert_same(a: dict, b: dict) -> None:
    for key in ("tables", "lens", "refcounts", "free", "stats"):
        assert a[key] == b[key], key
    np.testing.assert_array_equal(a["k"], b["k"])
    np.testing.assert_array_equal(a["v"], b["v"])


# ---------------------------------------------------------------- allocation and gather
def test_append_gather_roundtrip_prefill_then_decode():
    rng = np.random.default_rng(0)
    cache = PagedKVCache(n_blocks=16, block_size=4, n_kv_heads=H, head_dim=D, dtype=np.float64)
    cache.add_sequence("s")
    ks, vs = [], []
    for t in (7, 1, 1, 1, 5, 1):
        k, v = kv(rng, t)
        cache.append("s", k, v)
        ks.append(k)
        vs.append(v)
        got_k, got_v = cache.gather("s")
        np.testing.assert_array_equal(got_k, np.concatenate(ks, axis=1))
        np.testing.assert_array_equal(got_v, np.concatenate(vs, axis=1))
        length = sum(x.shape[1] for x in ks)
        assert cache.seq_len("s") == length
        assert len(cache.block_table("s")) == -(-length // 4)  # ceil: a block only when needed


def test_fresh_pool_hands_out_blocks_in_order_and_reuses_freed_ones():
    rng = np.random.default_rng(1)
    cache = PagedKVCache(n_blocks=6, block_size=2, n_kv_heads=H, head_dim=D)
    cache.add_sequence(0)
    cache.append(0, *kv(rng, 5))
    assert cache.block_table(0).tolist() == [0, 1, 2]
    cache.add_sequence(1)
    cache.append(1, *kv(rng, 3))
    assert cache.block_table(1).tolist() == [3, 4]
    assert cache.free(0) == 3
    assert cache.n_free_blocks == 4 and cache.n_used_blocks == 2
    cache.add_sequence(2)
    k, v = kv(rng, 6)
    cache.append(2, k, v)
    assert sorted(cache.block_table(2).tolist()) == [0, 1, 2]  # the freed blocks, reused
    np.testing.assert_allclose(cache.gather(2)[0], k.astype(np.float32))  # stale data overwritten


def test_multiple_sequences_are_independent():
    rng = np.random.default_rng(2)
    cache = PagedKVCache(n_blocks=20, block_size=3, n_kv_heads=H, head_dim=D, dtype=np.float64)
    ref: dict[str, list] = {}
    for step in range(6):  # interleaved appends: blocks of different sequences alternate
        for s in "abc":
            if step == 0:
                cache.add_sequence(s)
                ref[s] = []
            k, v = kv(rng, 1 + (step + ord(s)) % 3)
            cache.append(s, k, v)
            ref[s].append((k, v))
    for s in "abc":
        np.testing.assert_array_equal(cache.gather(s)[0], np.concatenate([k for k, _ in ref[s]], axis=1))
        np.testing.assert_array_equal(cache.gather(s)[1], np.concatenate([v for _, v in ref[s]], axis=1))


def test_float32_pool_stays_float32_and_casts_float64_input():
    cache = PagedKVCache(n_blocks=2, block_size=4, n_kv_heads=1, head_dim=2)
    cache.add_sequence(0)
    cache.append(0, np.ones((1, 3, 2)), np.ones((1, 3, 2)))
    k, v = cache.gather(0)
    assert k.dtype == np.float32 and v.dtype == np.float32 and cache.k_blocks.dtype == np.float32
    half = PagedKVCache(n_blocks=2, block_size=4, n_kv_heads=1, head_dim=2, dtype=np.float16)
    half.add_sequence(0)
    half.append(0, np.ones((1, 3, 2), dtype=np.float32), np.ones((1, 3, 2)))
    assert half.gather(0)[0].dtype == np.float16


def test_inputs_not_modified_and_outputs_are_copies():
    rng = np.random.default_rng(3)
    cache = PagedKVCache(n_blocks=4, block_size=4, n_kv_heads=H, head_dim=D, dtype=np.float64)
    cache.add_sequence(0)
    k, v = kv(rng, 5)
    k0, v0 = k.copy(), v.copy()
    cache.append(0, k, v)
    np.testing.assert_array_equal(k, k0)
    np.testing.assert_array_equal(v, v0)
    got_k, _ = cache.gather(0)
    got_k[...] = 0.0  # the caller's copy, not the cache
    np.testing.assert_array_equal(cache.gather(0)[0], k0)
    table = cache.block_table(0)
    table[0] = 99
    assert cache.block_table(0)[0] != 99
    with pytest.raises(ValueError):
        cache.k_blocks[0, 0, 0, 0] = 1.0  # read-only view


def test_empty_sequence_gathers_empty_arrays():
    cache = PagedKVCache(n_blocks=2, block_size=4, n_kv_heads=H, head_dim=D)
    cache.add_sequence("e")
    k, v = cache.gather("e")
    assert k.shape == (H, 0, D) and v.shape == (H, 0, D)
    assert cache.free("e") == 0


# ---------------------------------------------------------------- out of blocks
def test_out_of_blocks_raises_dedicated_error_and_changes_nothing():
    rng = np.random.default_rng(4)
    cache = PagedKVCache(n_blocks=3, block_size=4, n_kv_heads=H, head_dim=D)
    cache.add_sequence("a")
    cache.append("a", *kv(rng, 9))  # 3 blocks, 3 free slots left in the last one
    before = snapshot(cache)
    assert cache.blocks_needed("a", 4) == 1
    with pytest.raises(OutOfBlocksError, match="needs 1 more block") as info:
        cache.append("a", *kv(rng, 4))
    assert isinstance(info.value, RuntimeError)
    assert_same(before, snapshot(cache))
    cache.append("a", *kv(rng, 3))  # what fits still fits
    assert cache.seq_len("a") == 12


def test_out_of_blocks_for_copy_on_write_changes_nothing():
    rng = np.random.default_rng(5)
    cache = PagedKVCache(n_blocks=2, block_size=4, n_kv_heads=H, head_dim=D)
    cache.add_sequence("a")
    cache.append("a", *kv(rng, 6))  # blocks [0, 1], the last one half full
    cache.fork("a", "b")
    assert cache.n_free_blocks == 0 and cache.blocks_needed("b", 1) == 1  # the copy
    before = snapshot(cache)
    with pytest.raises(OutOfBlocksError):
        cache.append("b", *kv(rng, 1))
    assert_same(before, snapshot(cache))


# ---------------------------------------------------------------- sharing
def test_fork_shares_blocks_and_copy_on_write_keeps_parent_intact():
    rng = np.random.default_rng(6)
    cache = PagedKVCache(n_blocks=8, block_size=4, n_kv_heads=H, head_dim=D, dtype=np.float64)
    cache.add_sequence("p")
    k, v = kv(rng, 6)
    cache.append("p", k, v)
    cache.fork("p", "c")
    assert cache.block_table("c").tolist() == cache.block_table("p").tolist() == [0, 1]
    assert cache.refcounts[:2].tolist() == [2, 2]
    assert cache.stats().shared_blocks == 2 and cache.stats().stored_tokens == 6
    k2, v2 = kv(rng, 3)
    cache.append("c", k2, v2)  # into the shared, half-full block 1: copy first
    assert cache.block_table("c").tolist()[0] == 0  # full shared block stays shared
    assert cache.block_table("c").tolist()[1] not in (0, 1)
    assert cache.refcounts[:2].tolist() == [2, 1]
    np.testing.assert_array_equal(cache.gather("p")[0], k)  # parent unchanged
    np.testing.assert_array_equal(cache.gather("c")[0], np.concatenate([k, k2], axis=1))
    np.testing.assert_array_equal(cache.gather("c")[1], np.concatenate([v, v2], axis=1))
    # The parent now owns its block 1 alone: appending to it copies nothing.
    assert cache.blocks_needed("p", 2) == 0


def test_fork_at_block_boundary_needs_no_copy():
    rng = np.random.default_rng(7)
    cache = PagedKVCache(n_blocks=6, block_size=4, n_kv_heads=H, head_dim=D)
    cache.add_sequence("p")
    cache.append("p", *kv(rng, 8))  # exactly two full blocks
    cache.fork("p", "c")
    assert cache.blocks_needed("c", 1) == 1  # a new block, no copy
    cache.append("c", *kv(rng, 1))
    cache.append("p", *kv(rng, 1))
    assert cache.block_table("c")[:2].tolist() == cache.block_table("p")[:2].tolist() == [0, 1]
    assert cache.refcounts[:2].tolist() == [2, 2]
    assert cache.n_used_blocks == 4


def test_free_shared_sequence_keeps_blocks_for_the_other():
    rng = np.random.default_rng(8)
    cache = PagedKVCache(n_blocks=6, block_size=4, n_kv_heads=H, head_dim=D, dtype=np.float64)
    cache.add_sequence("p")
    k, v = kv(rng, 10)
    cache.append("p", k, v)
    cache.fork("p", "c")
    cache.fork("c", "g")  # a grandchild: refcount 3
    assert cache.refcounts[:3].tolist() == [3, 3, 3]
    assert cache.free("p") == 0  # still used by c and g
    assert cache.free("c") == 0
    np.testing.assert_array_equal(cache.gather("g")[0], k)
    assert cache.free("g") == 3
    assert cache.n_free_blocks == 6 and not cache.refcounts.any()


def test_stats_waste_and_sharing_accounting():
    rng = np.random.default_rng(9)
    cache = PagedKVCache(n_blocks=10, block_size=8, n_kv_heads=H, head_dim=D)
    cache.add_sequence(0)
    cache.append(0, *kv(rng, 12))
    cache.fork(0, 1)
    s = cache.stats()
    assert (s.used_blocks, s.free_blocks, s.shared_blocks) == (2, 8, 2)
    assert (s.stored_tokens, s.logical_tokens, s.reserved_slots) == (12, 24, 16)
    assert s.waste == pytest.approx(4 / 16)
    cache.append(1, *kv(rng, 1))  # copy on write: the copy holds the 4 tokens + 1 new
    s = cache.stats()
    assert (s.used_blocks, s.shared_blocks, s.stored_tokens, s.logical_tokens) == (3, 1, 17, 25)
    empty = PagedKVCache(n_blocks=1, block_size=4, n_kv_heads=1, head_dim=1).stats()
    assert empty.waste == 0.0 and empty.reserved_slots == 0


# ---------------------------------------------------------------- paged attention
def contiguous_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    n_heads, t_q, d = q.shape
    n_kv = k.shape[0]
    out = scaled_dot_product_attention(
        q.reshape(n_kv, n_heads // n_kv, t_q, d), k[:, None], v[:, None], is_causal=True
    )
    return out.reshape(n_heads, t_q, d)


@pytest.mark.parametrize("n_heads,n_kv,block_size", [(2, 2, 4), (4, 2, 3), (3, 1, 1), (2, 2, 16)])
def test_paged_attention_matches_contiguous_kv_cache(n_heads, n_kv, block_size):
    rng = np.random.default_rng(10)
    d = 8
    paged = PagedKVCache(n_blocks=64, block_size=block_size, n_kv_heads=n_kv, head_dim=d, dtype=np.float64)
    ref = KVCache()
    paged.add_sequence("s")
    for t in (9, 1, 1, 4, 1):  # prefill, decode, decode, a chunk of 4, decode
        k, v = kv(rng, t, n_kv, d)
        paged.append("s", k, v)
        k_all, v_all = ref.update(k, v)
        q = rng.standard_normal((n_heads, t, d))
        np.testing.assert_allclose(paged_attention(q, paged, "s"), contiguous_attention(q, k_all, v_all), atol=1e-12)


def test_paged_attention_after_forks_and_frees():
    rng = np.random.default_rng(11)
    d, n_kv = 4, 2
    paged = PagedKVCache(n_blocks=12, block_size=4, n_kv_heads=n_kv, head_dim=d, dtype=np.float64)
    refs: dict[str, KVCache] = {}
    paged.add_sequence("p")
    refs["p"] = KVCache()
    k, v = kv(rng, 6, n_kv, d)
    paged.append("p", k, v)
    refs["p"].update(k, v)
    for child in ("c1", "c2"):  # parallel sampling: two continuations of one prompt
        paged.fork("p", child)
        refs[child] = KVCache()
        refs[child].update(k, v)
    paged.free("p")  # the prompt's owner leaves; the children keep its blocks
    paged.add_sequence("x")  # an unrelated sequence takes (possibly stale) free blocks
    refs["x"] = KVCache()
    for step in range(5):
        for s in ("c1", "c2", "x"):
            kn, vn = kv(rng, 1 if s != "x" or step else 3, n_kv, d)
            paged.append(s, kn, vn)
            k_all, v_all = refs[s].update(kn, vn)
            q = rng.standard_normal((4, kn.shape[1], d))
            np.testing.assert_allclose(
                paged_attention(q, paged, s), contiguous_attention(q, k_all, v_all), atol=1e-12
            )
        if step == 2:
            paged.free("c2")
            del refs["c2"]
            paged.add_sequence("c2")
            refs["c2"] = KVCache()


def test_paged_attention_float32_and_non_causal():
    rng = np.random.default_rng(12)
    paged = PagedKVCache(n_blocks=4, block_size=4, n_kv_heads=1, head_dim=4)
    paged.add_sequence(0)
    k, v = kv(rng, 7, 1, 4, np.float32)
    paged.append(0, k, v)
    q = rng.standard_normal((2, 3, 4)).astype(np.float32)
    out = paged_attention(q, paged, 0)
    assert out.dtype == np.float32
    full = paged_attention(q, paged, 0, is_causal=False)
    expected = scaled_dot_product_attention(q, k, v)  # every query sees all 7 keys
    np.testing.assert_allclose(full, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(out, full)


# ---------------------------------------------------------------- bad input
def test_constructor_errors():
    with pytest.raises(ValueError, match="n_blocks"):
        PagedKVCache(0, 4, 1, 1)
    with pytest.raises(ValueError, match="block_size"):
        PagedKVCache(4, 0, 1, 1)
    with pytest.raises(TypeError, match="n_kv_heads"):
        PagedKVCache(4, 4, 1.5, 1)
    with pytest.raises(TypeError, match="dtype"):
        PagedKVCache(4, 4, 1, 1, dtype=np.int32)
    with pytest.raises(TypeError, match="dtype"):
        PagedKVCache(4, 4, 1, 1, dtype="not a dtype")


def test_sequence_id_errors():
    cache = PagedKVCache(4, 4, H, D)
    cache.add_sequence("a")
    with pytest.raises(ValueError, match="already"):
        cache.add_sequence("a")
    with pytest.raises(TypeError, match="hashable"):
        cache.add_sequence([1])
    with pytest.raises(ValueError, match="'b' is not a sequence"):
        cache.append("b", np.zeros((H, 1, D)), np.zeros((H, 1, D)))
    with pytest.raises(ValueError, match="parent_id"):
        cache.fork("b", "c")
    with pytest.raises(ValueError, match="child_id"):
        cache.fork("a", "a")
    for method in (cache.free, cache.gather, cache.seq_len, cache.block_table):
        with pytest.raises(ValueError, match="not a sequence"):
            method("zzz")
    with pytest.raises(ValueError, match="t_new"):
        cache.blocks_needed("a", 0)


@pytest.mark.parametrize(
    "k_new,v_new,error,match",
    [
        (np.zeros((H, 2, D + 1)), np.zeros((H, 2, D + 1)), ValueError, "k_new must have shape"),
        (np.zeros((H + 1, 2, D)), np.zeros((H + 1, 2, D)), ValueError, "k_new must have shape"),
        (np.zeros((2, D)), np.zeros((2, D)), ValueError, "k_new must have shape"),
        (np.zeros((H, 0, D)), np.zeros((H, 0, D)), ValueError, "at least one token"),
        (np.zeros((H, 2, D)), np.zeros((H, 3, D)), ValueError, "same shape"),
        (np.full((H, 2, D), np.nan), np.zeros((H, 2, D)), ValueError, "k_new contains NaN"),
        (np.zeros((H, 2, D)), np.full((H, 2, D), np.nan), ValueError, "v_new contains NaN"),
        (np.full((H, 2, D), "x"), np.zeros((H, 2, D)), TypeError, "k_new"),
    ],
)
def test_append_bad_input_changes_nothing(k_new, v_new, error, match):
    cache = PagedKVCache(4, 4, H, D)
    cache.add_sequence("a")
    cache.append("a", np.ones((H, 3, D)), np.ones((H, 3, D)))
    before = snapshot(cache)
    with pytest.raises(error, match=match):
        cache.append("a", k_new, v_new)
    assert_same(before, snapshot(cache))


def test_paged_attention_errors():
    cache = PagedKVCache(4, 4, 2, 4)
    cache.add_sequence("a")
    with pytest.raises(ValueError, match="t_q=1"):  # nothing cached yet
        paged_attention(np.zeros((2, 1, 4)), cache, "a")
    cache.append("a", np.ones((2, 3, 4)), np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="t_q=4"):
        paged_attention(np.zeros((2, 4, 4)), cache, "a")
    with pytest.raises(ValueError, match="multiple of n_kv_heads=2"):
        paged_attention(np.zeros((3, 1, 4)), cache, "a")
    with pytest.raises(ValueError, match="head_dim=4"):
        paged_attention(np.zeros((2, 1, 5)), cache, "a")
    with pytest.raises(ValueError, match="q must have shape"):
        paged_attention(np.zeros((1, 4)), cache, "a")
    with pytest.raises(ValueError, match="NaN"):
        paged_attention(np.full((2, 1, 4), np.nan), cache, "a")
    with pytest.raises(ValueError, match="not a sequence"):
        paged_attention(np.zeros((2, 1, 4)), cache, "b")
    with pytest.raises(TypeError, match="PagedKVCache"):
        paged_attention(np.zeros((2, 1, 4)), KVCache(), "a")
    with pytest.raises(TypeError, match="is_causal"):
        paged_attention(np.zeros((2, 1, 4)), cache, "a", is_causal=1)


# ---------------------------------------------------------------- property test
class PagedCacheMachine(RuleBasedStateMachine):
    """Random add / append / fork / free against a dict of contiguous arrays."""

    def __init__(self) -> None:
        super().__init__()
        self.rng = np.random.default_rng(0)
        self.cache = PagedKVCache(n_blocks=12, block_size=3, n_kv_heads=1, head_dim=2, dtype=np.float64)
        self.ref: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.next_id = 0

    @rule()
    def add(self) -> None:
        self.cache.add_sequence(self.next_id)
        self.ref[self.next_id] = (np.zeros((1, 0, 2)), np.zeros((1, 0, 2)))
        self.next_id += 1

    @precondition(lambda self: self.ref)
    @rule(pick=st.integers(0, 10**6), t=st.integers(1, 7))
    def append(self, pick: int, t: int) -> None:
        s = sorted(self.ref)[pick % len(self.ref)]
        k, v = kv(self.rng, t, 1, 2)
        needed = self.cache.blocks_needed(s, t)
        if needed > self.cache.n_free_blocks:
            before = snapshot(self.cache)
            with pytest.raises(OutOfBlocksError):
                self.cache.append(s, k, v)
            assert_same(before, snapshot(self.cache))
            return
        free_before = self.cache.n_free_blocks
        self.cache.append(s, k, v)
        assert self.cache.n_free_blocks == free_before - needed
        rk, rv = self.ref[s]
        self.ref[s] = (np.concatenate([rk, k], axis=1), np.concatenate([rv, v], axis=1))

    @precondition(lambda self: self.ref)
    @rule(pick=st.integers(0, 10**6))
    def fork(self, pick: int) -> None:
        s = sorted(self.ref)[pick % len(self.ref)]
        self.cache.fork(s, self.next_id)
        self.ref[self.next_id] = self.ref[s]
        self.next_id += 1

    @precondition(lambda self: self.ref)
    @rule(pick=st.integers(0, 10**6))
    def free(self, pick: int) -> None:
        s = sorted(self.ref)[pick % len(self.ref)]
        self.cache.free(s)
        del self.ref[s]

    @invariant()
    def refcounts_match_block_tables(self) -> None:
        counts = np.zeros(self.cache.n_blocks, dtype=np.int64)
        for s in self.cache.sequences:
            table = self.cache.block_table(s)
            assert len(set(table.tolist())) == len(table)  # no block twice in one table
            assert len(table) == -(-self.cache.seq_len(s) // self.cache.block_size)
            np.add.at(counts, table, 1)
        np.testing.assert_array_equal(counts, self.cache.refcounts)

    @invariant()
    def free_and_used_partition_the_pool(self) -> None:
        free = self.cache.free_block_ids.tolist()
        used = set(np.flatnonzero(self.cache.refcounts).tolist())
        assert len(free) == len(set(free))
        assert not (set(free) & used)
        assert set(free) | used == set(range(self.cache.n_blocks))
        stats = self.cache.stats()
        assert stats.used_blocks + stats.free_blocks == stats.n_blocks
        assert stats.stored_tokens <= stats.reserved_slots
        assert stats.stored_tokens <= stats.logical_tokens

    @invariant()
    def gather_matches_reference(self) -> None:
        assert set(self.cache.sequences) == set(self.ref)
        for s, (rk, rv) in self.ref.items():
            k, v = self.cache.gather(s)
            np.testing.assert_array_equal(k, rk)
            np.testing.assert_array_equal(v, rv)


PagedCacheMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestPagedCacheMachine = PagedCacheMachine.TestCase


# ---------------------------------------------------------------- memory simulation
def test_simulate_kv_memory_by_hand():
    # p = 2, o = 3: holds 3, 4, 5 tokens during its three decode steps (12 token-steps).
    report = simulate_kv_memory([2], [3], max_len=8, block_size=4)
    assert report.token_steps == 12
    assert report.reserved == {"max": 24, "pow2": 24, "oracle": 15, "paged": 16}
    assert report.used["oracle"] == pytest.approx(0.8)
    assert report.waste["paged"] == pytest.approx(0.25)


@settings(max_examples=50, deadline=None)
@given(
    lengths=st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), min_size=1, max_size=20),
    block_size=st.integers(1, 20),
)
def test_simulate_kv_memory_orderings(lengths, block_size):
    p = np.array([a for a, _ in lengths])
    o = np.array([b for _, b in lengths])
    report = simulate_kv_memory(p, o, max_len=128, block_size=block_size)
    used = report.used
    assert used["max"] <= used["pow2"] <= used["oracle"] <= 1.0
    assert 0 < used["paged"] <= 1.0
    # Paging wastes at most block_size - 1 slots per request per step.
    assert report.reserved["paged"] - report.token_steps <= (block_size - 1) * o.sum()
    if block_size == 1:
        assert used["paged"] == 1.0


def test_simulate_kv_memory_reproduces_the_vllm_shape():
    rng = np.random.default_rng(0)
    p = np.clip(rng.lognormal(np.log(161) - 0.5, 1.0, 2000).round(), 1, 1024).astype(int)
    o = np.clip(rng.lognormal(np.log(338) - 0.5, 1.0, 2000).round(), 1, 2048 - p).astype(int)
    used = simulate_kv_memory(p, o, max_len=2048, block_size=16).used
    assert 0.15 < used["max"] < 0.40  # the paper: 20-38 % for contiguous reservation
    assert used["paged"] > 0.96  # under 4 % waste


def test_simulate_kv_memory_errors():
    with pytest.raises(ValueError, match="more than max_len=10"):
        simulate_kv_memory([5, 6], [5, 5], max_len=10)
    with pytest.raises(ValueError, match="output_lengths must be >= 1"):
        simulate_kv_memory([5], [0])
    with pytest.raises(TypeError, match="prompt_lengths"):
        simulate_kv_memory([5.0], [1])
    with pytest.raises(ValueError, match="same shape"):
        simulate_kv_memory([5, 5], [1])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        simulate_kv_memory([], [])
    with pytest.raises(ValueError, match="block_size"):
        simulate_kv_memory([5], [1], block_size=0)
