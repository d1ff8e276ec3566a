"""The state of a widget's job, as an evented object the widget's controls observe.

:class:`JobRunner` is the one start / finish path of the Super-resolve, Classify tiles
and Train widgets: it runs a core job in a napari worker (or synchronously, for tests and
scripts), moves :class:`JobState` through idle -> running -> (cancelling ->) done,
cancelled or failed, and refuses a second job while one runs, so every job stays
cancellable. Widgets enable buttons and show messages from the state's events, never from
flags of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from psygnal import SignalGroupDescriptor

from ..engine.runner import CancelToken, RunCancelled
from .workers import progress_generator, start_job


class JobStatus(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def busy(self) -> bool:
        """A job is in flight (a new one cannot start)."""
        return self in (JobStatus.RUNNING, JobStatus.CANCELLING)


@dataclass
class JobState:
    """What a widget's job is doing; ``events.status`` / ``events.message`` fire on change."""

    status: JobStatus = JobStatus.IDLE
    message: str = "idle"
    # What ``@psygnal.evented`` adds, declared so that type checkers see ``events``.
    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()


#: How long closing a widget waits for its job to stop after the current batch.
SHUTDOWN_WAIT_S = 60.0

#: job(report, cancel) -> result: runs in a worker thread; ``report`` takes its events.
Job = Callable[[Callable[[Any], None], CancelToken], Any]


class JobRunner:
    """Runs one job at a time for a widget and keeps its :class:`JobState` current."""

    def __init__(self, cancelled_message: str = "cancelled; nothing was added") -> None:
        self.state = JobState()
        self.cancelled_message = cancelled_message
        self.synchronous = False  # True: run in the calling thread (tests, scripts)
        self.worker = None
        self._token: CancelToken | None = None
        self._job_ended = threading.Event()
        self._job_ended.set()
        self._closed = False  # the widget is gone: its callbacks must not run any more

    def start(
        self,
        job: Job,
        on_event: Callable[[Any], None],
        on_done: Callable[[Any], None],
        message: str = "running…",
    ) -> bool:
        """Start ``job``; ``on_event`` receives its events and ``on_done`` its result, on
        the GUI thread. Returns False (and changes nothing) while another job runs."""
        if self.state.status.busy or self._closed:
            return False
        token = self._token = CancelToken()
        self._set(JobStatus.RUNNING, message)
        ended = self._job_ended = threading.Event()

        def run(report):
            try:
                return job(report, token)
            finally:
                ended.set()

        def finished(result) -> None:
            try:
                on_done(result)
            except Exception as error:  # e.g. a layer napari refused
                self.fail(error)
                return
            self._set(JobStatus.DONE, "done")

        self.worker = start_job(
            progress_generator(run),
            self._unless_closed(on_event),
            self._unless_closed(finished),
            self._unless_closed(self._on_error),
            self.synchronous,
        )
        return True

    def _unless_closed(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        def call(value) -> None:
            if not self._closed:
                callback(value)

        return call

    def shutdown(self, timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
        """The widget is closing: cancel the job, ignore its callbacks from now on, and wait
        (up to ``timeout_s``) for it to stop after its current batch. True if it stopped."""
        self._closed = True
        if self._token is not None:
            self._token.cancel()
        return self._job_ended.wait(timeout_s)

    def cancel(self, message: str = "cancelling after the current batch…") -> None:
        """Ask the running job to stop between batches."""
        if self._token is not None and self.state.status is JobStatus.RUNNING:
            self._token.cancel()
            self._set(JobStatus.CANCELLING, message)

    def fail(self, error: BaseException) -> None:
        """A job that failed, or could not even start (bad choices)."""
        self._set(JobStatus.FAILED, f"error: {error}")

    def _set(self, status: JobStatus, message: str) -> None:
        # The message first: observers of ``status`` read the new message.
        self.state.message = message
        self.state.status = status

    def _on_error(self, error: BaseException) -> None:
        if isinstance(error, RunCancelled):
            self._set(JobStatus.CANCELLED, self.cancelled_message)
        else:
            self.fail(error)


class RunsJobs:
    """What a widget that runs jobs shares (a mixin for magicgui containers): its runner's
    state drives ``_on_status`` and the ``status`` label, closing the widget shuts the runner
    down, and ``synchronous`` runs jobs in the calling thread (tests, scripts)."""

    runner: JobRunner
    native: Any
    status: Any

    def _attach_runner(self, runner: JobRunner) -> None:
        self.runner = runner
        runner.state.events.status.connect(self._on_status)
        runner.state.events.message.connect(self._on_message)
        # Closing the dock or the viewer cancels the job and waits for its current batch:
        # its callbacks never reach deleted Qt widgets, and no thread outlives the window.
        # (The runner, not self: Python may have torn this object down by then.)
        self.native.destroyed.connect(lambda *_: runner.shutdown())

    @property
    def synchronous(self) -> bool:
        """Run jobs in the calling thread (tests, scripts) instead of a napari worker."""
        return self.runner.synchronous

    @synchronous.setter
    def synchronous(self, value: bool) -> None:
        self.runner.synchronous = value

    def _on_message(self, message: str) -> None:
        self.status.value = message

    def _on_status(self, status: JobStatus) -> None:
        raise NotImplementedError
