"""The terminal side of the laptop commands (``make demo``, ``make extract``): Airflow's and dbt's output goes to a log
file while the command's own progress lines and summaries still reach the terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

_console = sys.stdout


def progress(message: str) -> None:
    print(f"==> {message}", file=_console, flush=True)


@contextmanager
def output_to_log(log_path: Path, show_tail_on_failure: bool = True) -> Generator[TextIO]:
    """Send everything written to stdout/stderr, Airflow's and dbt's subprocesses' too, to a log file; yields a handle
    on the terminal, where progress lines and summaries still go. On failure the log's last lines are shown unless the
    caller reports the failure itself (``make extract``)."""
    global _console
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    _console = os.fdopen(os.dup(1), "w", buffering=1)
    with open(log_path, "ab") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield _console
        except BaseException:
            sys.stdout.flush()
            if show_tail_on_failure:
                tail = log_path.read_text(errors="replace").splitlines()[-40:]
                print("\n".join(["", f"--- last lines of {log_path} ---", *tail, ""]), file=_console, flush=True)
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            _console.close()
            _console = sys.stdout
