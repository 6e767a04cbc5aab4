"""Where log records go: nowhere in a normal run, to the run's `mis-audit.log` with --debug.

The terminal belongs to the CLI's own messages. Libraries log what a hostile peer did to
them (paramiko: "Invalid packet blocking" with a traceback; pynetdicom: an unknown PDU;
pypdf: a malformed file) and with no handler configured Python's last-resort handler prints
those records on stderr. `quiet_logging` makes sure none of them, no warning and no
exception escaping a background thread reaches the terminal; `debug_log` sends all of it to
a file of the run directory, readable by its owner only.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

LOG_FILE = "mis-audit.log"
LOG_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"
THREAD_LOGGER = "mis-audit.threads"
# Loggers that may quote a scanned document's content (pypdf's warnings about a malformed
# PDF do): personal data belongs in no log, not even the debug one.
CONTENT_LOGGERS = ("pypdf",)

_debug_handler: logging.Handler | None = None


def quiet_logging() -> None:
    """No log record, warning or background-thread traceback is printed to the terminal.

    Idempotent; call it first thing, and again once every library is imported (a library
    may attach a terminal handler of its own when it loads).
    """
    root = logging.getLogger()
    _drop_terminal_handlers(root)
    if not any(isinstance(handler, logging.NullHandler) for handler in root.handlers):
        root.addHandler(logging.NullHandler())
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            _drop_terminal_handlers(logger)
    # A logger that does not propagate and has no handler would still reach the last resort.
    logging.lastResort = logging.NullHandler()
    # A record a library cannot format would have its traceback printed ("Logging error").
    logging.raiseExceptions = False
    if _debug_handler is None:
        root.setLevel(logging.WARNING)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception
    sys.unraisablehook = _log_unraisable


def debug_log(directory: Path) -> Path:
    """Send every record (DEBUG and up) to `directory`/mis-audit.log, created 0600."""
    global _debug_handler
    quiet_logging()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_FILE
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    path.chmod(0o600)        # an existing file keeps no wider mode
    root = logging.getLogger()
    if _debug_handler is not None:
        root.removeHandler(_debug_handler)
        _debug_handler.close()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    _debug_handler = handler
    return path


def _drop_terminal_handlers(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        if isinstance(handler, logging.StreamHandler) \
                and not isinstance(handler, logging.FileHandler) \
                and handler.stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__):
            logger.removeHandler(handler)


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info: Any = (args.exc_type, args.exc_value, args.exc_traceback)
    logging.getLogger(THREAD_LOGGER).error("uncaught exception in thread %s", name,
                                           exc_info=exc_info)


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    exc_info: Any = (unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
    logging.getLogger(THREAD_LOGGER).debug("%s: %r", unraisable.err_msg or "exception ignored",
                                           unraisable.object, exc_info=exc_info)
