"""Run a blocking core job (with a progress callback) as a napari generator worker.

The job runs in a plain thread; the generator, which napari runs in its worker
thread, yields the job's progress events as they arrive and finally returns the
job's result, or raises its error (:class:`RunCancelled` after a cancel, so nothing
half-made is returned). :class:`~.job_state.JobRunner` drives it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import Any

from ..engine.runner import ProgressEvent

_DONE = object()


def progress_generator(
    job: Callable[[Callable[[ProgressEvent], None]], Any],
) -> Generator[ProgressEvent, None, Any]:
    events: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = job(events.put)
        except BaseException as error:  # re-raised in the worker, shown by napari
            outcome["error"] = error
        finally:
            events.put(_DONE)

    thread = threading.Thread(target=target, name="shisrcnet-job", daemon=True)
    thread.start()
    while (event := events.get()) is not _DONE:
        yield event
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def run_synchronously(generator: Generator) -> Any:
    """Drive a progress generator to completion in this thread (tests, scripts)."""
    try:
        while True:
            next(generator)
    except StopIteration as stop:
        return stop.value


def report_events(generator, report):
    """Pass each yielded event to ``report`` (the synchronous path's 'yielded' signal)."""
    while True:
        try:
            event = next(generator)
        except StopIteration as stop:
            return stop.value
        report(event)
        yield event


def start_job(generator: Generator, on_event, on_finished, on_error, synchronous: bool = False):
    """Run a progress generator in a napari worker and return it (the GUI stays live).

    ``synchronous`` runs it to the end in this thread instead (tests, scripts) and returns
    None; the same callbacks are called either way.
    """
    if synchronous:
        try:
            result = run_synchronously(report_events(generator, on_event))
        except Exception as error:  # RunCancelled included
            on_error(error)
            return None
        on_finished(result)
        return None
    from napari.qt.threading import create_worker

    # Connected at creation: an error then goes to on_error only (not re-raised on the
    # GUI thread as well).
    return create_worker(
        lambda: (yield from generator),
        _connect={"yielded": on_event, "returned": on_finished, "errored": on_error},
        _start_thread=True,
    )
