"""Two fake outlets on loopback publish the same wire story: one under three URL variants
and cut, the other edited after publication. Each outlet's copy is one article; the copies
share a cluster whose first member is the original; the edit is a version; every decision
is in duplicate_links. The same story on both backends (the embedded file, a lake), read
through the user views."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import rows, run_cli
from tests.fakeweb import FakeWeb

WIRE = [
    "GENEVA (Wire) - Negotiators from forty-two countries reached a provisional agreement on Tuesday on the "
    "sharing of water from the upper Rhine basin, ending three years of talks that had repeatedly stalled over "
    "the allocation of summer flows between farmers, hydropower operators and cities downstream.",
    "Under the draft, each country will report its withdrawals every month to a joint commission, which will be "
    "able to order temporary cuts when the river falls below levels set for each season. The commission will "
    "also publish the data, a demand pushed by environmental groups throughout the negotiations.",
    "Farmers' associations said the agreement protected irrigation in dry years but warned that the reporting "
    "rules would add paperwork for small producers. Hydropower companies welcomed the clarity on minimum flows, "
    "which they said would allow them to plan maintenance and investment over longer periods.",
    "The text must still be approved by national parliaments before it can enter into force, a process that "
    "diplomats expect to take at least eighteen months. Several delegations said they would seek changes to the "
    "clauses on dispute settlement, which remain the most contested part of the draft.",
    "The talks were chaired by a former judge of the international court, who told reporters that the deal "
    "showed that shared rivers could be managed by rules rather than by the strongest upstream country, and "
    "that the commission's first report would be published within a year of ratification.",
]
EDIT = (
    "Update: two more delegations announced on Wednesday that they would sign the draft next week."
)


def page(title: str, paragraphs: list[str], published: str) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta property="article:published_time" content="{published}"></head>'
        f"<body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{body}</article></body></html>"
    )


def rss(items: list[str]) -> str:
    entries = "".join(f"<item><title>t</title><link>{u}</link></item>" for u in items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{entries}</channel></rss>'


def sitemap(url: str, lastmod: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{url}</loc><lastmod>{lastmod}</lastmod></url></urlset>"
    )


def test_wire_story_across_two_outlets(tmp_path: Path, backend: str) -> None:
    first = FakeWeb("127.0.0.1").start()  # the agency's own site publishes first
    second = FakeWeb("127.0.0.2").start()  # a paper runs a cut copy with its own headline
    try:
        a_url = f"{first.base}/2024/06/04/rhine-water-deal"
        first.add("/robots.txt", "", content_type="text/plain")
        first.add(
            "/2024/06/04/rhine-water-deal",
            page("Rhine states reach water deal", WIRE, "2024-06-04T09:00:00Z"),
        )
        first.add(
            "/sitemap.xml", sitemap(a_url, "2024-06-04T09:00:00Z"), content_type="application/xml"
        )

        second.add("/robots.txt", "", content_type="text/plain")
        variants = [
            f"{second.base}/world/2024/06/04/water-accord?utm_source=rss&utm_medium=feed",
            f"{second.base}/world/2024/06/04/water-accord/amp",
            f"{second.base}/world/2024/06/04/water-accord#comments",
        ]
        cut = page(
            "Upstream and downstream, a deal on the river at last", WIRE[:3], "2024-06-04T11:30:00Z"
        )
        second.add("/world/2024/06/04/water-accord", cut)
        second.add("/world/2024/06/04/water-accord/amp", cut)
        second.add("/feed.xml", rss(variants), content_type="application/rss+xml")

        config = tmp_path / "outlets.toml"
        config.write_text(f"""
[defaults]
delay = 0
concurrency = 4

[[outlet]]
name = "agency"
sitemaps = ["{first.base}/sitemap.xml"]
language = "en"

[[outlet]]
name = "paper"
feeds = ["{second.base}/feed.xml"]
language = "en"
""")
        db = backend
        result = run_cli("crawl", "--config", str(config), "--db", db)
        assert result.returncode == 0, result.stderr

        # the agency edits its story later; its sitemap says so with a new lastmod
        edited = datetime.now(UTC).isoformat()
        first.add(
            "/2024/06/04/rhine-water-deal",
            page("Rhine states reach water deal", [*WIRE, EDIT], "2024-06-04T09:00:00Z"),
        )
        first.add("/sitemap.xml", sitemap(a_url, edited), content_type="application/xml")
        result = run_cli("crawl", "--config", str(config), "--db", db)
        assert result.returncode == 0, result.stderr

        articles = rows(
            db, "SELECT id, outlet, version, cluster_id, text FROM articles ORDER BY outlet"
        )
        assert [(a[1], a[2]) for a in articles] == [("agency", 2), ("paper", 1)], (
            "one article per outlet; the edit made version 2, not a new article"
        )
        agency, paper = articles
        assert EDIT in agency[4]
        assert agency[3] is not None and agency[3] == paper[3], (
            "the cut copy joins the original's cluster"
        )
        heads = rows(
            db, "SELECT first_article_id, size FROM clusters WHERE cluster_id = ?", [agency[3]]
        )
        assert heads == [(agency[0], 2)], "the cluster knows who published first"
        paper_urls = {
            r[0] for r in rows(db, "SELECT url FROM article_urls WHERE article_id = ?", [paper[0]])
        }
        assert set(variants) <= paper_urls, "every URL the copy was seen under is stored"
        assert rows(
            db, "SELECT count(*) FROM pages WHERE outlet = 'paper' AND skip_reason IS NULL"
        ) == [(1,)], "the three variants cost one article page"
        ((old,),) = rows(
            db,
            "SELECT text FROM article_versions WHERE article_id = ? AND version = 1",
            [agency[0]],
        )
        assert EDIT not in old
        levels = {r[0] for r in rows(db, "SELECT level FROM duplicate_links")}
        assert {"near", "version"} <= levels
        ((score, pair),) = rows(
            db,
            "SELECT score, [article_id, matched_article_id] FROM duplicate_links WHERE level = 'near'",
        )
        assert 0.5 <= score <= 1.0 and sorted(pair) == sorted([agency[0], paper[0]])
    finally:
        first.stop()
        second.stop()
