"""Data governance: where each dataset comes from (lineage) and where personal data is (PII: the raw zone scanned,
each personal column classified in the dbt sources and protected in silver)."""
