"""10,000 create/free cycles of a batch, a store (open, write, query, close)
and a policy registry with a Python type must not grow the process: RSS
(/proc/self/statm) is compared with a bound that a leak of one handle per
cycle exceeds (measured here, on the same objects, by leaking on purpose)."""

import gc
import os

import vigil

CYCLES = 10000
BOUND = 8 << 20  # bytes of RSS growth allowed across the cycles


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Small(vigil.Policy):
    name = "small"

    def evaluate(self, metric, ctx):
        return metric.value > 1


def metrics(i):
    return [vigil.Metric("m", float(j), 1000 + j, {"k": "v%d" % j}) for j in range(10)]


def cycle(i):
    if i % 2 == 0:  # explicit close through context managers
        with vigil.Batch(metrics(i), batch_id="b%d" % i) as b:
            with vigil.Store.open("sqlite::memory:") as st:
                assert st.write(b).written == 10
                assert len(st.query("m")) == 10
        with vigil.PolicyTypes() as t:
            t.register(Small)
    else:  # dropped references: __del__ frees the handles
        b = vigil.Batch(metrics(i), batch_id="b%d" % i)
        st = vigil.Store.open("sqlite::memory:")
        st.write(b)
        t = vigil.PolicyTypes()
        t.register(Small)
        del b, st, t


def test_no_leak_across_10000_create_free_cycles():
    for i in range(500):  # warm up allocator arenas and caches
        cycle(i)
    gc.collect()
    before = rss()
    for i in range(CYCLES):
        cycle(i)
    gc.collect()
    grown = rss() - before
    assert grown < BOUND, "RSS grew by %d bytes over %d cycles" % (grown, CYCLES)


def test_the_bound_catches_one_leaked_handle_per_cycle():
    gc.collect()
    before = rss()
    kept = [vigil.Batch(metrics(i)) for i in range(400)]  # the smallest of the three handles
    per_handle = (rss() - before) / len(kept)
    for b in kept:
        b.close()
    assert per_handle * CYCLES > BOUND, "a leaked batch costs only %d bytes" % per_handle
