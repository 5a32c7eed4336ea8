"""compose.yaml (issue #24, part 2) without docker compose: valid against the Compose Specification's JSON schema
(the copy check-jsonschema ships, vendored from compose-spec under Apache-2.0), and what the schema cannot say:
every dependency exists, the migrations run once and first, the API and the workers have health checks, every
`tandem` command it runs exists, and every TANDEM_* variable it sets is a setting."""

from __future__ import annotations

import copy
import importlib.resources
import json
import shlex
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from service.cli import app as cli_app
from service.settings import Settings
from tests.conftest import project_root

SCHEMA_PACKAGE = "check_jsonschema.builtin_schemas.vendor"
COMPOSE = project_root() / "compose.yaml"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((importlib.resources.files(SCHEMA_PACKAGE) / "compose-spec.json").read_text())
    return schema


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def _errors(document: dict[str, Any]) -> list[str]:
    schema = _schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def _argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert _schema()["$id"] == "compose_spec.json"
    assert _errors(_compose()) == []


def test_the_schema_check_refuses_what_compose_would() -> None:
    """The check is real: a misspelt key and a wrong depends_on condition are errors."""
    document = _compose()
    misspelt = copy.deepcopy(document)
    misspelt["services"]["api"]["healthcheck"]["intervall"] = "10s"
    assert any("intervall" in error for error in _errors(misspelt))
    wrong_condition = copy.deepcopy(document)
    wrong_condition["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert _errors(wrong_condition)


def test_every_dependency_is_a_service_and_the_migration_runs_once_before_the_service() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on {dependency}, which is not a service"
    migrate = services["migrate"]
    assert _argv(migrate) == ["tandem", "db", "upgrade"]
    assert migrate["restart"] == "no" and "deploy" not in migrate
    runs_tandem = [name for name, s in services.items() if s.get("image") == "tandem:local" and name != "migrate"]
    assert set(runs_tandem) == {"api", "worker", "status-sweep", "pull"}
    for name in runs_tandem:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert "db upgrade" not in " ".join(_argv(services[name])), f"{name} migrates too"


def test_the_api_and_the_workers_have_health_checks_and_scale() -> None:
    services = _compose()["services"]
    api, worker = services["api"], services["worker"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["healthcheck"]["test"][0] == "CMD"
    assert worker["healthcheck"]["test"] == ["CMD", "tandem", "sync", "worker-ready"]
    assert api["deploy"]["replicas"] == "${API_REPLICAS:-2}"
    assert worker["deploy"]["replicas"] == "${WORKER_REPLICAS:-2}"
    assert api["environment"]["TANDEM_RATE_LIMIT_STORAGE"] == "redis://redis:6379/0"
    assert api["depends_on"]["redis"] == {"condition": "service_healthy"}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


@pytest.mark.parametrize("name", ["migrate", "worker", "status-sweep", "api"])
def test_every_command_it_runs_exists(name: str) -> None:
    argv = _argv(_compose()["services"][name])
    if argv[0] == "sh":  # the API: uvicorn on the app factory's module
        assert "uvicorn service.main:app" in argv[-1]
        return
    assert argv[0] == "tandem"
    words = [word for word in argv[1:] if not word.startswith("-") and not word.isdigit()]
    shown = CliRunner().invoke(cli_app, [*words, "--help"])
    assert shown.exit_code == 0, shown.output
    options = [word for word in argv if word.startswith("--")]
    assert all(option in shown.output for option in options), shown.output
    healthcheck = _compose()["services"][name].get("healthcheck", {}).get("test", [])
    if healthcheck[1:2] == ["tandem"]:
        assert CliRunner().invoke(cli_app, [*healthcheck[2:], "--help"]).exit_code == 0


def test_every_tandem_variable_it_sets_is_a_setting() -> None:
    document = _compose()
    settings = {name.upper() for name in Settings.model_fields}
    pull_only = {"TANDEM_PULL_TARGETS"}  # read by the pull service's shell loop, not by the service
    for name, service in document["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("TANDEM_") and variable not in pull_only:
                assert variable.removeprefix("TANDEM_") in settings, f"{name}: {variable} is not a setting"
