"""`make ui`: the api-server over what `make demo` ran (tools/medalflow_demo/ui.py)."""

from __future__ import annotations

import pytest

from medalflow_demo.ui import DemoNotRunError, api_server_command, remember_environment, serve_ui, ui_environment


def test_the_ui_runs_over_the_demo_s_database_and_lake_without_a_login(tmp_path):
    demo = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////x/airflow.db", "MEDALFLOW_LAKE_URI": "/x/lake"}
    remember_environment(tmp_path, demo)
    environment = ui_environment(tmp_path)
    assert environment == {**demo, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    command = api_server_command(8123)
    assert command[1:] == ["api-server", "--host", "127.0.0.1", "--port", "8123"], "a laptop-only, no-login UI"


def test_without_a_demo_it_says_to_run_make_demo_first(tmp_path, capsys):
    with pytest.raises(DemoNotRunError, match=r"make demo"):
        ui_environment(tmp_path)
    assert serve_ui(tmp_path) == 2
    assert "Run `make demo` first" in capsys.readouterr().err
