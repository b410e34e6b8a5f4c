"""The records are defined once (archive/records.py): the documented schema is generated from
it, and what the real stages produce holds no key the definition does not know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args, get_origin

from archive.records import (
    RECORD_VERSION,
    PageItem,
    PageRecord,
    _hints,
    _unwrap,
    checked,
    record_problem,
    with_schema,
)
from archive.spool import SpoolWriter, read_lines
from pipelines.clean import clean_page

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "tests" / "fixtures" / "site"


def _undeclared(value: Any, schema: Any, path: str = "") -> list[str]:
    """Keys of value (recursively) that the schema does not declare."""
    base, _ = _unwrap(schema)
    origin = get_origin(base)
    if isinstance(base, type) and hasattr(base, "__required_keys__") and isinstance(value, dict):
        hints = _hints(base)
        out = [f"{path}{k}" for k in value if k not in hints]
        for k, v in value.items():
            if k in hints:
                out += _undeclared(v, hints[k], f"{path}{k}.")
        return out
    if origin is list and isinstance(value, list):
        return [u for v in value for u in _undeclared(v, get_args(base)[0], path)]
    if get_origin(base) is not None and type(None) in get_args(base):  # X | None
        options = [a for a in get_args(base) if a is not type(None)]
        return (
            _undeclared(value, options[0], path) if value is not None and len(options) == 1 else []
        )
    return []


def _item(name: str) -> PageItem:
    return {
        "type": "page",
        "record_id": "r-" + name,
        "run_id": "run",
        "outlet": "courrier",
        "url": f"https://www.courrier.test/{name}",
        "redirect_urls": [],
        "status": 200,
        "final_url": f"https://www.courrier.test/{name}",
        "content_type": "text/html",
        "fetched_at": "2024-05-17T10:00:00+00:00",
        "size_bytes": 1000,
        "skip_reason": None,
        "detail": None,
        "language_hint": "fr",
        "hints": {"title": "T", "published_at": None, "source": "feed", "source_url": "u"},
    }


def test_the_documented_schema_is_the_code() -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert with_schema(doc) == doc, "run: python -m archive.records --update docs/ARCHITECTURE.md"


def test_cleaned_pages_hold_only_declared_keys_and_pass_the_check(tmp_path: Path) -> None:
    pages = sorted(SITE.glob("*.html"))
    assert len(pages) >= 4
    archived = 0
    for page in pages:
        record = clean_page(_item(page.stem), page.read_text(encoding="utf-8"))
        assert _undeclared(record, PageRecord) == [], page.name
        assert record_problem(dict(record)) is None, page.name
        archived += record.get("article") is not None
    assert archived >= 2, "the fixture site has articles"


def test_the_spool_stamps_the_version_and_reads_back_typed(tmp_path: Path) -> None:
    page = SITE / "climate.html"
    record = clean_page(_item("climate"), page.read_text(encoding="utf-8"))
    writer = SpoolWriter(tmp_path, "run.courrier")
    writer.open()
    writer.write(record)
    writer.close()
    (segment,) = tmp_path.glob("*.jsonl")
    (line,) = list(read_lines(segment))
    assert line.record is not None and line.record["v"] == RECORD_VERSION
    assert "v" not in record, "the caller's record is left as it was"
    back = checked(line.record)
    assert back["type"] == "page" and back.get("article") == json.loads(
        json.dumps(record["article"])
    )


def test_a_wrong_record_names_the_field() -> None:
    bad = {
        **_item("x"),
        "removed_blocks": [{"position": "1", "kind": "k", "rule": "r", "text": "t"}],
    }
    assert record_problem(bad) == "removed_blocks[0].position: expected a number, got a string"
    assert (
        record_problem({**_item("x"), "hints": {"seen_as": "http://a"}})
        == "hints.seen_as: expected a list, got a string"
    )
