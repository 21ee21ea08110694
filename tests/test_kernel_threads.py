"""Tests for neurograph.kernels.threads and the thread dispatch of
neurograph.kernels.charrnn_bptt: jobs run on the helper's thread, in order,
whether it spins or sleeps; errors reach the joining thread; nothing spins
unless asked to; the members' split adapts and never changes a result."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch

from neurograph.kernels import charrnn_bptt, threads
from neurograph.kernels.charrnn_bptt import _Balance, bptt_window
from neurograph.kernels.threads import available_cores, helpers


@pytest.fixture(params=[0.0, 2e-3], ids=["sleeping", "spinning"])
def spin(request, monkeypatch):
    monkeypatch.setattr(threads, "spin_s", request.param)
    return request.param


def test_helpers_are_kept_and_grow():
    first = helpers(1)
    assert helpers(1) == first
    two = helpers(2)
    assert two[0] is first[0] and len(two) == 2 and two[1] is not two[0]


def test_jobs_run_on_the_helper_in_order(spin):
    helper = helpers(1)[0]
    out, ran_on = np.zeros(300, dtype=np.int64), set()

    def job(i):
        out[i] = i + 1
        ran_on.add(threading.get_ident())

    for i in range(300):
        helper.post(job, (i,))
        if i % 100 == 99:
            time.sleep(0.01)  # past any spin: the helper sleeps at the next post
        helper.join()
        assert out[i] == i + 1  # visible to the joining thread once join returns
    assert ran_on == {helper_thread_ident(helper)} and threading.get_ident() not in ran_on


def helper_thread_ident(helper) -> int:
    seen = []
    helper.post(lambda: seen.append(threading.get_ident()), ())
    helper.join()
    return seen[0]


def test_a_job_error_is_raised_by_join_and_the_helper_keeps_working(spin):
    helper = helpers(1)[0]
    helper.post(lambda: 1 / 0, ())
    with pytest.raises(ZeroDivisionError):
        helper.join()
    done = []
    helper.post(done.append, (1,))
    helper.join()
    assert done == [1]


def test_by_default_neither_an_idle_helper_nor_a_joining_thread_spins():
    assert threads.spin_s == 0 or "NEUROGRAPH_SPIN_US" in os.environ
    helper = helpers(1)[0]
    cpu = time.process_time()
    helper.post(time.sleep, (0.2,))  # the joining thread waits 0.2 s, then the helper idles 0.2 s
    helper.join()
    time.sleep(0.2)
    assert time.process_time() - cpu < 0.05  # this process's CPU time, all threads


def test_a_bad_spin_setting_is_named(monkeypatch):
    monkeypatch.setenv("NEUROGRAPH_SPIN_US", "fast")
    with pytest.raises(ValueError, match="NEUROGRAPH_SPIN_US"):
        threads._spin_from_environment()
    monkeypatch.setenv("NEUROGRAPH_SPIN_US", "250")
    assert threads._spin_from_environment() == pytest.approx(250e-6)


def test_available_cores_are_within_the_machine():
    assert 1 <= available_cores() <= (os.cpu_count() or 1)


# ---------------------------------------------------------------- the split
def test_the_calling_thread_goes_alone_when_helpers_are_late_and_tries_them_again():
    b, n, balance = 8, 2, _Balance()
    assert balance.bounds(b, n) == [0, 4, 8]
    for _ in range(4):
        balance.shared(b, n, per_member=1e-5, waited=1e-3)
    assert balance.bounds(b, n) == [0, 8, 8]  # alone: the helper's range is empty
    tries = []
    for call in range(40):
        if balance.bounds(b, n)[1] == b:
            balance.alone()
        else:
            tries.append(call)
            balance.shared(b, n, per_member=1e-5, waited=1e-3)  # still late
    assert len(tries) >= 3 and np.all(np.diff(np.diff(tries)) > 0)  # ever longer between tries


def test_the_split_follows_the_waits_within_its_bounds():
    b, n, balance = 9, 3, _Balance()
    for _ in range(20):
        balance.shared(b, n, per_member=1e-5, waited=0.0)  # helpers always early: hand them more
    bounds = balance.bounds(b, n)
    assert bounds == [0, 1, 5, 9]  # the calling thread keeps one member
    for _ in range(3):
        balance.shared(b, n, per_member=1e-5, waited=5e-6)  # between a quarter and one member: stay
    assert balance.bounds(b, n) == bounds


def window_args(seed: int, *, b: int = 5, v: int = 4, h: int = 12, steps: int = 20) -> tuple[list, list]:
    """Random inputs of :func:`bptt_window` (float64, mixed scopes) and its zeroed outputs."""
    gen = torch.Generator().manual_seed(seed)
    n = 2 * v + h
    inputs = [
        torch.randn(b, n, n, generator=gen, dtype=torch.float64) * 0.5,  # weight
        torch.randn(b, n, generator=gen, dtype=torch.float64) * 0.1,  # bias
        torch.rand(b, h, generator=gen, dtype=torch.float64) + 0.5,  # hidden multipliers
        torch.arange(b) % 2 == 0,  # scope_all
        torch.randint(0, v, (b, steps), generator=gen),  # inputs
        torch.randint(0, v, (b, steps), generator=gen),  # targets
        torch.randn(b, h, generator=gen, dtype=torch.float64) * 0.5,  # h0
        v,
    ]
    f64 = dict(dtype=torch.float64)
    outputs = [torch.zeros(b, **f64), torch.zeros(b, n, n, **f64), torch.zeros(b, n, **f64),
               torch.zeros(b, n, **f64), torch.zeros(b, h, **f64)]  # fmt: skip
    return inputs, outputs


@pytest.mark.parametrize("n", [2, 3])
def test_every_split_gives_the_results_of_one_thread(n, monkeypatch):
    inputs, one = window_args(3)
    bptt_window(*inputs, *one, threads=1)
    b = one[0].shape[0]
    for first in range(1, b + 1):
        balance = _Balance()
        balance.lead = first - b // n
        assert balance.bounds(b, n)[1] == first
        monkeypatch.setitem(charrnn_bptt._balances, (b, n), balance)
        _, split = window_args(3)
        bptt_window(*inputs, *split, threads=n)
        for name, a, c in zip(["loss", "g_weight", "g_bias", "g_mult", "h_last"], one, split):
            assert torch.equal(a, c), (first, name)  # each member: the same code, on one thread
