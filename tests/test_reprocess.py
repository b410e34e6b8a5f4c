"""Reprocess after a rule change: exactly the affected articles change, with their removed
blocks, search index and extractor version; --dry-run writes nothing. On both backends: the
file rewrites in place, the lake appends (archive/lake/reclean.py) and its views show the newest."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import config_file, outlet_config, run_cli
from tests.conftest import rows as _rows
from tests.fakeweb import FakeWeb

PARAGRAPH = "toute la différence entre un politicien"


def test_reprocess_updates_exactly_the_articles_a_new_rule_touches(
    fake_outlet: FakeWeb, tmp_path: Path, backend: str
) -> None:
    config = config_file(tmp_path, fake_outlet.base)
    db = backend
    assert run_cli("crawl", "--config", str(config), "--db", db).returncode == 0
    before = dict(_rows(db, "SELECT id, content_hash FROM articles"))
    (target,) = [
        r[0] for r in _rows(db, f"SELECT id FROM articles WHERE text LIKE '%{PARAGRAPH}%'")
    ]

    # the operator adds an outlet override: that paragraph is boilerplate for this outlet
    config.write_text(
        outlet_config(fake_outlet.base, extra=f'strip_patterns = ["^C.est là {PARAGRAPH}"]')
    )
    dry = run_cli("reprocess", "--config", str(config), "--db", db, "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert [c["article_id"] for c in report["changed"]] == [target]
    assert report["changed"][0]["removed_after"] == report["changed"][0]["removed_before"] + 1
    assert dict(_rows(db, "SELECT id, content_hash FROM articles")) == before, (
        "a dry run writes nothing"
    )

    done = run_cli("reprocess", "--config", str(config), "--db", db)
    assert done.returncode == 0, done.stderr
    assert f"changed article {target}" in done.stdout
    after = dict(_rows(db, "SELECT id, content_hash FROM articles"))
    assert {i for i in after if after[i] != before[i]} == {target}
    (text,) = _rows(db, f"SELECT text FROM articles WHERE id = {target}")[0]
    assert PARAGRAPH not in text and "Trump : médiateur ou stratège" in text
    removed = _rows(db, f"SELECT kind, text FROM removed_blocks WHERE article_id = {target}")
    assert any(PARAGRAPH in t for _, t in removed)
    versions = {r[0] for r in _rows(db, "SELECT DISTINCT extractor_version FROM articles")}
    assert len(versions) == 1 and None not in versions
    hits = run_cli("search", "politicien", "--db", db, "--format", "json")
    assert hits.returncode == 0, hits.stderr
    assert all(h["id"] != target for h in json.loads(hits.stdout)), (
        "the search index follows the new text"
    )

    again = run_cli("reprocess", "--config", str(config), "--db", db, "--format", "json")
    assert json.loads(again.stdout)["changed"] == [], (
        "a second reprocess with the same rules changes nothing"
    )
