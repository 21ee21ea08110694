"""Tests for neurograph.kernels.threads: jobs run, on the helper's thread, in order,
whether it is spinning or asleep; errors reach the joining thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from neurograph.kernels.threads import helpers


def test_helpers_are_kept_and_grow():
    first = helpers(1)
    assert helpers(1) == first
    two = helpers(2)
    assert two[0] is first[0] and len(two) == 2 and two[1] is not two[0]


def test_jobs_run_on_the_helper_in_order_spinning_or_asleep():
    helper = helpers(1)[0]
    out, threads = np.zeros(300, dtype=np.int64), set()

    def job(i):
        out[i] = i + 1
        threads.add(threading.get_ident())

    for i in range(300):
        helper.post(job, (i,))
        if i % 100 == 99:
            time.sleep(0.05)  # past the idle spin: the helper is asleep at the next post
        helper.join()
        assert out[i] == i + 1  # visible to the joining thread once join returns
    assert threads == {helper_thread_ident(helper)} and threading.get_ident() not in threads


def helper_thread_ident(helper) -> int:
    seen = []
    helper.post(lambda: seen.append(threading.get_ident()), ())
    helper.join()
    return seen[0]


def test_a_job_error_is_raised_by_join_and_the_helper_keeps_working():
    helper = helpers(1)[0]
    helper.post(lambda: 1 / 0, ())
    with pytest.raises(ZeroDivisionError):
        helper.join()
    done = []
    helper.post(done.append, (1,))
    helper.join()
    assert done == [1]
