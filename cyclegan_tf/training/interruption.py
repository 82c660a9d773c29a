"""Stopping a training run on Ctrl-C or SIGTERM without losing a step.

The first SIGINT (Ctrl-C) or SIGTERM (how Kubernetes, Slurm and ``kill`` ask a process to stop) only
asks for a stop: the step under way finishes, ``callbacks.ResumableBackup`` writes a backup of it and
raises ``TrainingInterrupted``, and the command prints ``interrupted at epoch E, step S; run the same
command to resume`` and exits with 130 (SIGINT) or 143 (SIGTERM). A second signal stops at once
(``KeyboardInterrupt`` or ``SystemExit(143)``): the backups are written so that a run stopped anywhere,
even in the middle of one, resumes from the last complete backup.

The workers of a multi-worker run all stop after the same step: each step they agree whether any of
them was asked to stop (``distribute.any_worker``), so that none is left waiting for the others in the
next step's collectives.

A process whose main thread cannot run Python (stuck in TensorFlow, such as a collective waiting for a
dead peer) would never see the request: a watcher thread ends it with 128 + the signal's number once
``grace`` seconds have passed after the first signal, or two seconds after the second.
"""

import logging
import os
import signal
import socket
import threading

logger = logging.getLogger(__name__)

# Seconds the main thread gets to finish its step and back up after the first signal.
STOP_GRACE = 120.0
# Seconds after a second signal before the watcher ends a main thread that did not stop.
ABORT_GRACE = 2.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on request after a backup; the same command resumes it.

    A ``KeyboardInterrupt``, so that code that handles Ctrl-C handles it too.

    Attributes:
        signum: int, the signal that asked for the stop (``signal.SIGINT`` or ``signal.SIGTERM``).
        exit_code: int, 128 + ``signum``, what the command exits with.
        message: str, one line for the user.
    """

    def __init__(self, signum, where):
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        self.message = f"interrupted at {where}; run the same command to resume"
        super().__init__(self.message)


class StopSignals:
    """Turns the first SIGINT or SIGTERM into a request to stop after the current step.

    Use it as a context manager around training; ``requested`` is then None, or the number of the
    first signal received. Outside the main thread (where Python cannot handle signals) it does nothing.

    Args:
        grace: float, seconds after the first signal before the watcher ends a process whose main
            thread has not stopped. Defaults to ``STOP_GRACE``.
        abort_grace: float, the same after the second signal. Defaults to ``ABORT_GRACE``.
        exit_process: callable taking the exit status; ``os._exit`` by default.

    Example:
        >>> with StopSignals() as stop:  # doctest: +SKIP
        ...     model.fit(..., callbacks=[ResumableBackup("backup", stop=stop)])
    """

    def __init__(self, grace=STOP_GRACE, abort_grace=ABORT_GRACE, exit_process=os._exit):
        self.grace = grace
        self.abort_grace = abort_grace
        self.requested = None
        self.aborted = None
        self._exit_process = exit_process
        self._closed = threading.Event()
        self._previous = None

    def _handle(self, signum, frame):
        del frame
        if self.requested is None:
            self.requested = signum
            logger.warning(
                "Received %s: stopping after this step (again to stop at once).",
                signal.Signals(signum).name,
            )
            return
        logger.warning("Received %s again: stopping now.", signal.Signals(signum).name)
        self.aborted = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def _watch(self, read_end):
        received = []
        while not self._closed.is_set():
            try:
                data = read_end.recv(64)
            except OSError:
                return
            if not data:
                return
            received += [number for number in data if number in _SIGNALS]
            if not received:
                continue
            wait = self.grace if len(received) == 1 else self.abort_grace
            while True:
                try:
                    read_end.settimeout(wait)
                    more = read_end.recv(64)
                except TimeoutError:
                    break
                except OSError:
                    return
                if not more:
                    return
                signals = [number for number in more if number in _SIGNALS]
                if signals:
                    received += signals
                    wait = self.abort_grace
            if self._closed.is_set():
                return
            logger.error("Still running after %s: exiting now.", signal.Signals(received[0]).name)
            logging.shutdown()
            self._exit_process(128 + received[0])
            return

    def install(self):
        """Installs the handlers and starts the watcher (main thread only; elsewhere a no-op).

        Returns:
            self.
        """
        if threading.current_thread() is not threading.main_thread():
            logger.debug("Not in the main thread: SIGINT and SIGTERM keep their handlers.")
            return self
        self._read_end, self._write_end = socket.socketpair()
        self._write_end.setblocking(False)
        handlers = {number: signal.signal(number, self._handle) for number in _SIGNALS}
        wakeup = signal.set_wakeup_fd(self._write_end.fileno(), warn_on_full_buffer=False)
        self._previous = (handlers, wakeup)
        threading.Thread(
            target=self._watch, args=(self._read_end,), name="stop-watcher", daemon=True
        ).start()
        return self

    def close(self):
        """Restores the previous handlers and wakeup fd, and stops the watcher."""
        if self._previous is None:
            return
        handlers, wakeup = self._previous
        self._previous = None
        for number, handler in handlers.items():
            signal.signal(number, handler)
        signal.set_wakeup_fd(wakeup)
        self._closed.set()
        self._write_end.close()
        self._read_end.close()

    def __enter__(self):
        return self.install()

    def __exit__(self, exc_type, exc, traceback):
        self.close()
        if self.aborted is not None and exc_type is not None and issubclass(exc_type, Exception):
            # The KeyboardInterrupt of the second signal was raised inside a library that turned it
            # into an error of its own (TensorFlow's tensor conversion, tracing a SavedModel, makes
            # it a ValueError): it is still the stop at once, not a failure of the run.
            if self.aborted == signal.SIGINT:
                raise KeyboardInterrupt from exc
            raise SystemExit(128 + self.aborted) from exc
