"""Blocking calls in a background thread with progress while they run (issue 22).

Events decide when a call moves on; no timing is asserted."""

from __future__ import annotations

import threading

import pytest

from engine.background import Abandoned, Gate, Task, in_background, loading, waited
from engine.jobs import run_job
from storage.errors import UnpromptError

FAST = 0.005  # seconds between progress points in these tests


def test_a_blocking_call_yields_progress_until_it_returns() -> None:
    release = threading.Event()
    job = in_background(lambda: release.wait() and "loaded", loading("a model"), interval=FAST)
    first, second = next(job), next(job)  # the call is still blocked on the event
    assert first.message.startswith("loading a model (") and "waited_s" in second.data
    release.set()
    assert run_job(job) == "loaded"


def test_the_calls_error_is_raised_in_the_job_as_it_was() -> None:
    def broken() -> None:
        raise UnpromptError("The GGUF file is corrupt.")

    with pytest.raises(UnpromptError, match=r"^The GGUF file is corrupt\.$"):
        run_job(in_background(broken, loading("a model"), interval=FAST))


def test_a_job_closed_during_the_call_stops_waiting_and_drops_the_result() -> None:
    release = threading.Event()
    task = Task(lambda: release.wait() and "late", "slow load")
    job = waited(task, loading("a model"), interval=FAST)
    next(job)
    job.close()  # what the worker does on cancel: returns at once, the call still runs
    assert not task.done()
    release.set()
    task.thread.join()
    assert task.result() == "late"  # nobody asked for it; a later job may


def test_a_paused_call_waits_at_its_checkpoint_and_stops_once_abandoned() -> None:
    gate, reached, outcome = Gate(), threading.Event(), {}

    def call() -> None:
        reached.set()
        try:
            gate.checkpoint()
            outcome["passed"] = True
        except Abandoned:
            outcome["abandoned"] = True

    gate.pause()
    thread = threading.Thread(target=call)
    thread.start()
    reached.wait()
    gate.abandon()
    thread.join()
    assert outcome == {"abandoned": True}


def test_closing_the_job_abandons_its_gated_call() -> None:
    gate, release = Gate(), threading.Event()

    def call() -> str:
        release.wait()
        gate.checkpoint()
        return "finished anyway"

    task = Task(call, "generation")
    job = waited(task, loading("x"), gate, interval=FAST)
    next(job)
    job.close()
    release.set()
    task.thread.join()
    with pytest.raises(Abandoned):
        task.result()


def test_the_switch_interval_is_short_only_while_a_call_runs() -> None:
    import sys

    from engine.background import SWITCH_S

    before, release = sys.getswitchinterval(), threading.Event()
    task = Task(release.wait, "load")
    assert sys.getswitchinterval() == min(SWITCH_S, before)
    release.set()
    task.thread.join()
    assert sys.getswitchinterval() == before
