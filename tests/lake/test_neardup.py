"""Near-duplicate clustering on a real lake: the same clusters, heads and near decisions as
the file backend on the same records; two writers ingesting copies of one story at the same
moment still put them in one cluster; a writer killed in flight leaves the clusters as if it
had never died."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from archive.db import writer
from archive.ingest import ingest_records
from archive.lake.ingest import LakeWriter
from archive.spool import SpoolWriter
from archive.target import LakeTarget
from tests.conftest import rows
from tests.lake.archives import PAGES, archive_batches, fixture, page
from tests.lake.test_ingest import _killed_writer

REPO = Path(__file__).resolve().parents[2]
# each article with the first member of its cluster, each cluster's size (named by its first
# member's URL: ids differ between backends)
MEMBERS = """SELECT a.canonical_url, f.canonical_url FROM articles a
             JOIN clusters c ON c.cluster_id = a.cluster_id
             JOIN articles f ON f.id = c.first_article_id ORDER BY 1"""
SIZES = """SELECT f.canonical_url, c.size FROM clusters c
           JOIN articles f ON f.id = c.first_article_id ORDER BY 1"""
NEAR = """SELECT a.canonical_url, m.canonical_url, d.score, d.reason FROM duplicate_links d
          JOIN articles a ON a.id = d.article_id JOIN articles m ON m.id = d.matched_article_id
          WHERE d.level = 'near' ORDER BY 1, 2"""


def clustering(db: str) -> tuple[list[Any], list[Any], list[Any]]:
    """What a user reads of the clusters, through the user views, with ids made URLs."""
    url_of = {int(i): u for i, u in rows(db, "SELECT id, canonical_url FROM articles")}
    near = [
        (a, m, score, re.sub(r"cluster (\d+)", lambda g: f"cluster {url_of[int(g[1])]}", reason))
        for a, m, score, reason in rows(db, NEAR)
    ]
    return rows(db, MEMBERS), rows(db, SIZES), near


def file_archive(tmp: Path, batches: list[list[Any]]) -> str:
    db = tmp / "archive.duckdb"
    with writer(db) as con:
        for records in batches:
            ingest_records(con, records)
    return str(db)


def test_the_lake_clusters_as_the_file_does(lake: tuple[str, LakeTarget], tmp_path: Path) -> None:
    url, target = lake
    batches = archive_batches(copies=2)  # the second copy: near duplicates of the first
    with LakeWriter(target) as w:
        for records in batches:
            w.ingest_records(records)
    members, sizes, near = clustering(url)
    assert (members, sizes, near) == clustering(file_archive(tmp_path, batches))
    # not vacuous: a copy in the same batch as its original (another outlet's wirtschaft) and
    # one in a later batch (the second copy's climate story, near the edited first)
    batch_of = {r.get("key"): n for n, records in enumerate(batches) for r in records}
    pairs = {(batch_of.get(a), batch_of.get(m)) for a, m, *_ in near}
    assert len(near) >= 2 and len({a == m for a, m in pairs}) == 2, near
    assert all("joined cluster" in reason for *_, reason in near)


_WRITER = """
import sys, time
from pathlib import Path
from archive.lake.ingest import LakeWriter, ingest_spool
from archive.target import parse_target
url, spool, go = sys.argv[1:]
with LakeWriter(parse_target(url)) as w:
    while not Path(go).exists():
        time.sleep(0.005)
    deadline, waited = time.monotonic() + 90, 0
    while list(Path(spool).glob('*.jsonl')):
        assert time.monotonic() < deadline, 'the spool never drained'
        waited += ingest_spool(w, Path(spool)).outcomes['waiting']
        time.sleep(0.05)
print(waited)
"""


def test_two_writers_cluster_copies_ingested_at_once(
    lake: tuple[str, LakeTarget], tmp_path: Path
) -> None:
    """Each writer has one copy of each story (the second outlet's edited), ingested in the
    same instant: whichever claims second sees the first's bands and joins its clusters."""
    url, _target = lake
    go = tmp_path / "go"
    procs = []
    for outlet in ("agency", "paper"):
        spool = tmp_path / f"spool-{outlet}"
        segment = SpoolWriter(spool, f"run-1.{outlet}")
        segment.open()
        for name in PAGES:
            html = fixture(name, f"{outlet}.example")
            if outlet == "paper":
                html = html.replace("</p>", " (Agencies)</p>", 1)
            segment.write(page(f"http://{outlet}.example/{name}", html, outlet=outlet))
        segment.close()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, url, str(spool), str(go)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    go.touch()
    waits = []  # how often each writer's segment waited for the other's batch in flight
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        waits.append(int(out))
    clusters = rows(
        url, "SELECT cluster_id, count(*), list(outlet ORDER BY outlet) FROM articles GROUP BY 1"
    )
    assert sorted(c[1:] for c in clusters) == [(2, ["agency", "paper"])] * len(PAGES), (
        f"each story's two copies in one cluster (waits {waits})"
    )
    assert rows(url, "SELECT count(*) FROM duplicate_links WHERE level = 'near'") == [(len(PAGES),)]
    sizes = rows(url, "SELECT size, count(*) FROM clusters GROUP BY 1 ORDER BY 1")
    assert sizes == [(2, len(PAGES))]


def test_a_writer_killed_in_flight_leaves_the_clusters_whole(
    lake: tuple[str, LakeTarget], tmp_path: Path
) -> None:
    url, target = lake
    batches = archive_batches(copies=3)
    with LakeWriter(target) as w:
        w.ingest_records(batches[0])
        w.ingest_records(batches[1])
    _killed_writer("after_commit", url, batches[2], tmp_path)  # settled by the next writer
    _killed_writer("before_commit", url, batches[3], tmp_path)  # its claims released
    with LakeWriter(target) as w:
        for records in batches[2:]:
            w.ingest_records(records)
    assert clustering(url) == clustering(file_archive(tmp_path, batches))


def test_a_migrated_archive_dedups_versions_and_clusters_what_comes_after(
    lake: tuple[str, LakeTarget], tmp_path: Path
) -> None:
    """After `migrate`, the lake's writers know the moved articles as the file's ingest knew
    them: an exact copy under a new URL, a new text of a moved article and a near copy of one
    are decided as in one file archive that ingested everything."""
    from archive.lake.migrate import migrate_archive
    from tests.lake.archives import fixture, page

    url, target = lake
    batches = archive_batches(copies=2)  # the second copy: near duplicates of the first
    host = "news0.example"
    batches.insert(-1, [
        page(f"http://{host}/yet-another-copy", fixture("wirtschaft.html", host)),  # exact
        page(f"http://{host}/climate", fixture("climate.html", host).replace("a third", "half")),
    ])  # fmt: skip
    moved, after = batches[:2], batches[2:]
    (tmp_path / "moved").mkdir()
    result = migrate_archive(Path(file_archive(tmp_path / "moved", moved)), target)
    assert result.ok, result.counts
    with LakeWriter(target) as w:
        for records in after:
            w.ingest_records(records)
    (tmp_path / "whole").mkdir()
    whole = file_archive(tmp_path / "whole", batches)
    articles = "SELECT canonical_url, version, content_hash FROM articles ORDER BY 1"
    exact = """SELECT a.canonical_url, m.canonical_url, d.level FROM duplicate_links d
               JOIN articles a ON a.id = d.article_id JOIN articles m ON m.id = d.matched_article_id
               WHERE d.level <> 'near' ORDER BY 1, 2"""
    assert rows(url, articles) == rows(whole, articles)
    assert rows(url, exact) == rows(whole, exact)
    assert clustering(url) == clustering(whole)
    versions = {u: v for u, v, _ in rows(url, articles)}
    assert versions[f"https://{host}/2024/05/18/climate-summit"] == 3, "the moved one's next text"
