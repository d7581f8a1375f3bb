"""Extraction from source systems into the lake's raw zone: SQL with change data capture, REST APIs, file drops."""
