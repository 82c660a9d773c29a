import threading
import time

import numpy as np
import pytest

from cyclegan_tf import export
from cyclegan_tf.serving.predict import RequestError
from cyclegan_tf.serving.registry import ModelRegistry
from cyclegan_tf.serving.runs import Deadline, MemoryBudget, ModelRuns, json_bytes
from tests.serving.conftest import tiny_generator


def test_budget_grants_waiting_requests_in_arrival_order():
    budget = MemoryBudget(max_bytes=100, max_runs=1, wait_seconds=30)
    order = []
    holder = budget.acquire(10)

    def wait(index):
        with budget.reserve(10):
            order.append(index)
            time.sleep(0.01)

    threads = []
    for index in range(6):
        threads.append(threading.Thread(target=wait, args=(index,)))
        threads[-1].start()
        while len(budget._waiting) < index + 1:  # queued in this order
            time.sleep(0.005)
    holder.release()
    for thread in threads:
        thread.join()
    assert order == list(range(6))
    assert budget.used_bytes == 0 and budget.runs == 0


def test_a_reservation_waits_no_longer_than_its_deadline():
    budget = MemoryBudget(max_bytes=100, max_runs=1, wait_seconds=30)
    with budget.reserve(10):
        with pytest.raises(RequestError) as error:
            budget.acquire(10, deadline=Deadline(0.2))
    assert error.value.status == 504 and "--rest-api-timeout-in-ms" in error.value.message
    parse = budget.acquire(json_bytes(2), run=False)  # bytes only: no run slot taken
    assert budget.runs == 0 and budget.used_bytes == 82
    parse.release()
    parse.release()  # once only
    assert budget.used_bytes == 0


def test_a_tiled_run_past_its_deadline_stops_and_frees_its_share(tmp_path):
    export.export_generator(tiny_generator(1), str(tmp_path), "m")
    registry = ModelRegistry(str(tmp_path), poll_seconds=0)
    registry.refresh()
    served = registry.get("m")
    runs = ModelRuns(MemoryBudget(max_bytes=2**22, max_runs=1))  # 4 MiB: 300x400 runs tiled
    pixels = np.zeros((1, 300, 400, 3), np.float32)

    class PassesAfterThreeBands(Deadline):
        bands = 0

        def check(self, *progress):
            self.bands += bool(progress)
            if self.bands == 3:
                self.expires = time.monotonic()
            super().check()

    deadline = PassesAfterThreeBands(30)
    with pytest.raises(RequestError) as error:
        runs.run(served, "serving_default", {"images": pixels}, [(300, 400)], deadline)
    assert error.value.status == 504 and deadline.bands == 3  # stopped at the band it passed
    assert runs.budget.used_bytes == 0 and runs.budget.runs == 0
    with pytest.raises(RequestError):
        runs.run(served, "serving_default", {"images": pixels}, [(300, 400)], Deadline(0))
