"""Deterministic demo source systems of the importer: an ERP database, a partner REST API and partner file drops.

* :mod:`medalflow_demo.world` generates the data (lazily, one day at a time) from a seed;
* :mod:`medalflow_demo.erp` applies it to a SQLAlchemy database (SQLite or PostgreSQL);
* :mod:`medalflow_demo.partner_api` serves payments, FX rates, shipments and forecasts over HTTP, with fault injection;
* :mod:`medalflow_demo.files` drops the file-based logistics partners' daily manifests into the lake's inbox.

Nothing is imported here so that importing the package stays cheap.
"""
