"""`mediawatch crawl --db <lake>`: a real crawl of the fake outlet on 127.0.0.1 lands in the
lake as it lands in the file, the next crawl fetches no known article again (the crawl reads
its state from the lake), and the spool lives in this machine's home for the lake."""

from __future__ import annotations

import json
from pathlib import Path

from archive.target import LakeTarget
from tests.conftest import ARTICLE_PATHS, outlet_config, rows, run_cli, serving_outlet
from tests.lake.test_migrate import lake_rows

ARTICLE = "canonical_url, title, published_at, date_source, language, word_count, version, text"


def test_a_crawl_into_a_lake_archives_what_a_crawl_into_the_file_does(
    lake: tuple[str, LakeTarget], tmp_path: Path
) -> None:
    url, target = lake
    db = tmp_path / "data" / "archive.duckdb"
    with serving_outlet() as web:
        config = tmp_path / "outlets.toml"
        config.write_text(outlet_config(web.base))
        on_file = run_cli("crawl", "--config", str(config), "--db", str(db))
        assert on_file.returncode == 0, on_file.stderr
        web.log.clear()
        on_lake = run_cli("crawl", "--config", str(config), "--db", url, cwd=tmp_path)
        assert on_lake.returncode == 0, on_lake.stderr
        assert "5 new" in on_lake.stderr, on_lake.stderr
        order = " ORDER BY canonical_url"
        assert lake_rows(target, f"SELECT {ARTICLE} FROM articles{order}") == rows(
            db, f"SELECT {ARTICLE} FROM articles{order}"
        )
        skips = "SELECT skip_reason, count(*) FROM pages GROUP BY 1 ORDER BY 1"
        assert lake_rows(target, skips) == rows(db, skips)
        home = tmp_path / "data" / f"lake-{target.dbname}"
        assert (home / "spool").is_dir() and not list((home / "spool").glob("*.jsonl"))
        assert list((home / "logs").glob("crawl-*.log")), "the crawl's log is in the lake's home"

        web.log.clear()
        again = run_cli("crawl", "--config", str(config), "--db", url, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        fetched = [p for _, p in web.log]
        for path in ARTICLE_PATHS:
            assert not any(p.startswith(path) for p in fetched), f"{path} fetched again: {fetched}"
        found = run_cli("search", "Poutine", "--db", url, "--format", "json")
        assert found.returncode == 0, found.stderr
        assert [h["outlet"] for h in json.loads(found.stdout)] == ["courrier"], (
            "the crawl's articles are searchable at once (the writer indexes them)"
        )
    runs = "SELECT status, articles_new FROM crawl_runs ORDER BY started_at"
    assert [r[1] for r in lake_rows(target, runs)] == [5, 0]
    assert lake_rows(target, "SELECT count(*) FROM articles") == [(5,)]
