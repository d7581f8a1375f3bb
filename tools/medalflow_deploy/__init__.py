"""Deploy tooling that runs on a laptop or a CI runner, never on MWAA: ``./deploy.sh`` is its front door."""
