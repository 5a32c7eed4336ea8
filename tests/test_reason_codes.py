"""The plan-status reason codes the engine emits are exactly the codes of our published CodeSystem."""

from __future__ import annotations

import ast
from pathlib import Path

from fhir_mappings.definitions import PLAN_STATUS_REASON
from tests.conftest import project_root


def _engine_reason_codes() -> set[str]:
    """Codes the engine can emit: the first argument of every `Finding(...)` written as a literal, and the
    overdue-deadline codes (the keys of adherence._ACTION, passed to Finding through a variable)."""
    codes: set[str] = set()
    for path in Path(project_root() / "service" / "plan_status").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Finding" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    codes.add(first.value)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_ACTION" for t in node.targets):
                assert isinstance(node.value, ast.Dict)
                codes |= {str(k.value) for k in node.value.keys if isinstance(k, ast.Constant)}
    return codes


def test_every_engine_reason_code_is_published() -> None:
    engine = _engine_reason_codes()
    assert len(engine) >= 20, engine
    assert engine == {code for code, _ in PLAN_STATUS_REASON.concepts}
