"""fhir_mappings stays pure: no service, database, web or HTTP import anywhere in the package."""

from __future__ import annotations

import ast
from pathlib import Path

import fhir_mappings

FORBIDDEN = ("sqlmodel", "sqlalchemy", "fastapi", "httpx", "service", "starlette", "requests")


def imported_modules(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def test_no_forbidden_imports() -> None:
    package = Path(fhir_mappings.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert len(files) > 5
    offending = [
        f"{path.name}: {module}"
        for path in files
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    ]
    assert offending == []


def test_fhir_resources_imported_only_by_the_release_shim() -> None:
    package = Path(fhir_mappings.__file__).parent
    users = {p.name for p in package.rglob("*.py") if any(m.startswith("fhir.resources") for m in imported_modules(p))}
    assert users == {"release.py"}


def test_public_api_is_explicit() -> None:
    assert fhir_mappings.__all__
    missing = [name for name in fhir_mappings.__all__ if not hasattr(fhir_mappings, name)]
    assert missing == []
