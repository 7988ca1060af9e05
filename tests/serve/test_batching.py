"""Dynamic batching in-process: concurrent jobs share a call, keys split batches, one worker, timeouts, errors."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pix2color.serve.batching import Batcher


class Recorder:
    """A ``run`` that records each call's key, items and thread, and whether two calls ever overlapped."""

    def __init__(self, seconds: float = 0.0, fail: bool = False):
        self.calls: list[tuple[object, list]] = []
        self.threads: set[str] = set()
        self.busy = threading.Lock()
        self.overlapped = False
        self.seconds = seconds
        self.fail = fail

    def __call__(self, key, items):
        if not self.busy.acquire(blocking=False):
            self.overlapped = True
            self.busy.acquire()
        try:
            self.calls.append((key, list(items)))
            self.threads.add(threading.current_thread().name)
            time.sleep(self.seconds)
            if self.fail:
                raise RuntimeError("model failed")
            return [f"{key}:{item}" for item in items]
        finally:
            self.busy.release()


def run_jobs(batcher: Batcher, jobs: list[tuple[object, object]], timeout_s: float = 5) -> list:
    async def main():
        await batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.submit(item, key, 1, timeout_s) for item, key in jobs), return_exceptions=True
            )
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_concurrent_jobs_share_one_call_up_to_max_batch() -> None:
    run = Recorder()
    done = run_jobs(Batcher(run, max_batch=4, max_wait_s=0.05), [(i, "k") for i in range(10)])
    assert [d.result for d in done] == [f"k:{i}" for i in range(10)]
    assert [len(items) for _, items in run.calls] == [4, 4, 2]
    assert [d.batch_size for d in done] == [4] * 8 + [2] * 2


def test_max_batch_one_turns_batching_off() -> None:
    run = Recorder()
    run_jobs(Batcher(run, max_batch=1, max_wait_s=0.05), [(i, "k") for i in range(3)])
    assert [len(items) for _, items in run.calls] == [1, 1, 1]


def test_settings_split_a_batch_and_every_call_runs_in_one_worker_thread() -> None:
    run = Recorder(seconds=0.01)
    done = run_jobs(Batcher(run, max_batch=8, max_wait_s=0.05), [(1, "a"), (2, "b"), (3, "a"), (4, "b")])
    assert [d.result for d in done] == ["a:1", "b:2", "a:3", "b:4"]
    assert run.calls == [("a", [1, 3]), ("b", [2, 4])]
    assert len(run.threads) == 1 and not run.overlapped


def test_a_job_past_its_timeout_is_dropped_before_it_runs() -> None:
    run = Recorder(seconds=0.3)
    done = run_jobs(Batcher(run, max_batch=1, max_wait_s=0), [(1, "k"), (2, "k")], timeout_s=0.15)
    assert all(isinstance(d, TimeoutError) for d in done)
    assert [items for _, items in run.calls] == [[1]]  # the second never reached the model


def test_a_failing_batch_fails_its_jobs_and_the_batcher_goes_on() -> None:
    run = Recorder(fail=True)
    done = run_jobs(Batcher(run, max_batch=2, max_wait_s=0.05), [(1, "k"), (2, "k"), (3, "k")])
    assert all(isinstance(d, RuntimeError) for d in done)
    assert len(run.calls) == 2


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "[::1]:8000", "127.0.0.2"])
def test_loopback_host_headers(host: str) -> None:
    from pix2color.serve.app import is_local_host

    assert is_local_host(host)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "192.168.1.2:8000", "[2001:db8::1]:80", ""])
def test_other_host_headers(host: str) -> None:
    from pix2color.serve.app import is_local_host

    assert not is_local_host(host)
