"""The observability layer's dbt build: the models tagged observability and their data tests."""

from __future__ import annotations

import logging
import tempfile
from typing import Any

from medalflow.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Data tests run with every build; the unit tests are the project's code tests (CI, tests/dbt).
BUILD_ARGUMENTS = ("build", "--select", "tag:observability", "--exclude", "resource_type:unit_test")


def build_observability(settings: Settings | None = None, attempt: tuple[str, str, str, int] | None = None) -> Any:
    """``dbt build`` of the observability models; its artifacts kept in the lake like every dbt run's (so the next
    landing records this build too). Fails naming dbt's exit code."""
    from medalflow.artifacts import store_run_artifacts
    from medalflow.maintenance import run_dbt

    settings = settings or get_settings()
    with tempfile.TemporaryDirectory(prefix="medalflow-observability-") as target:
        completed = run_dbt(settings, BUILD_ARGUMENTS, target)
        if attempt is not None:
            try:
                store_run_artifacts(target, settings.lake_uri, *attempt)
            except Exception:  # losing the copy must not turn a good build red
                log.exception("could not keep the observability build's artifacts in the lake")
    if completed.returncode:
        raise RuntimeError(f"dbt {' '.join(BUILD_ARGUMENTS)} failed with exit code {completed.returncode}")
    return completed.returncode
