"""The documentation's links lead somewhere: a relative link names a file of the repository, and a document
named but kept outside it (the shared references beside the repository) says where it is (issue #24 part 6:
docs/fhir.md linked a DESIGN.md that is not in the repository)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import project_root

ROOT = project_root()
DOCUMENTS = sorted([*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"), *(ROOT / "bench").glob("*.md")])
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
NAMED_DOCUMENT = re.compile(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b")
SHARED = "../shared/"


def _label(document: Path) -> str:
    return str(document.relative_to(ROOT))


@pytest.mark.parametrize("document", DOCUMENTS, ids=_label)
def test_relative_links_name_files_of_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    missing = [
        target
        for target in LINK.findall(text)
        if "://" not in target and not target.startswith("mailto:") and not (document.parent / target).exists()
    ]
    assert not missing, f"{_label(document)} links to files that do not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_label)
def test_documents_kept_outside_the_repository_say_where_they_are(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    outside = {
        name
        for name in NAMED_DOCUMENT.findall(text)
        if not any((folder / name).exists() for folder in (ROOT, ROOT / "docs", ROOT / "bench"))
    }
    unplaced = sorted(name for name in outside if SHARED + name not in text)
    assert not unplaced, f"{_label(document)} names {unplaced} without saying they are in {SHARED} (beside the repo)"
