"""Peak memory of a crawl that meets a server sending response header lines forever.

One outlet on 127.0.0.1 with `--pages` ordinary articles, crawled by `mediawatch crawl` with
the shipped settings (30 s download timeout, 2 retries), once as it is (the baseline) and
once with one more article whose server answers a status line and then header lines
without end. Printed: the crawl process's peak RSS for each, and their ratio (1.0x means the
flood cost nothing). `--unbounded S` adds a third crawl with the header limits lifted and
the download timeout cut to S seconds, to show what the limit prevents (before it, the
shipped 30 s timeout and 2 retries took one crawl to 9.9 GB: keep S small).

Usage: ``.venv/bin/python bench/header_flood.py [--pages 20] [--unbounded 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.hostile.web import HostileWeb, article_html  # noqa: E402

MEDIAWATCH = REPO / ".venv" / "bin" / "mediawatch"
WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(json.dumps({'rc': rc, 'kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)


def crawl(
    web: HostileWeb, paths: list[str], tmp: Path, settings: dict[str, object]
) -> tuple[int, float, int]:
    """(peak RSS kB of the crawl process, seconds, exit code) of one crawl of the listed paths."""
    items = "".join(f"<item><title>t</title><link>{web.base}{p}</link></item>" for p in paths)
    name = f"feed-{len(list(tmp.iterdir()))}.xml"
    web.add(
        f"/{name}",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>b</title>{items}</channel></rss>',
        content_type="application/rss+xml",
    )
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    config = run_dir / "outlets.toml"
    config.write_text(
        f'[[outlet]]\nname = "bench"\nfeeds = ["{web.base}/{name}"]\ndelay = 0\nconcurrency = 4\n'
    )
    env = {**os.environ, "MEDIAWATCH_SCRAPY_SETTINGS": json.dumps(settings)}
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            WRAPPER,
            str(MEDIAWATCH),
            "crawl",
            "--config",
            str(config),
            "--db",
            str(run_dir / "a.duckdb"),
            "--log",
            str(run_dir / "crawl.log"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["kb"], time.monotonic() - started, report["rc"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument(
        "--unbounded",
        type=float,
        default=0.0,
        help="also crawl with the header limits lifted and this download timeout (s)",
    )
    args = parser.parse_args()
    web = HostileWeb().start()
    web.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    paths = [f"/2024/10/01/story-{i:03d}" for i in range(args.pages)]
    for i, p in enumerate(paths):
        web.add(p, article_html(f"Story {i}", 500 + i))
    web.add_handler("/2024/10/01/header-flood", web.header_flood(max_seconds=120))
    shipped = {"MEDIAWATCH_WORKERS": 0}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            base_kb, base_s, base_rc = crawl(web, paths, tmp, shipped)
            flood_kb, flood_s, flood_rc = crawl(
                web, [*paths, "/2024/10/01/header-flood"], tmp, shipped
            )
            print(
                f"baseline ({args.pages} articles):        peak RSS {base_kb / 1024:7.1f} MiB, "
                f"{base_s:5.1f} s, exit {base_rc}"
            )
            print(
                f"+ one endless header section:  peak RSS {flood_kb / 1024:7.1f} MiB, "
                f"{flood_s:5.1f} s, exit {flood_rc}   ({flood_kb / base_kb:.2f}x baseline)"
            )
            if args.unbounded > 0:
                lifted = {
                    **shipped,
                    "MEDIAWATCH_MAX_HEADER_BYTES": 2**62,
                    "MEDIAWATCH_MAX_HEADERS": 2**62,
                    "DOWNLOAD_TIMEOUT": args.unbounded,
                    "RETRY_TIMES": 0,
                }
                free_kb, free_s, free_rc = crawl(
                    web, [*paths, "/2024/10/01/header-flood"], tmp, lifted
                )
                print(
                    f"  limits lifted, {args.unbounded:g} s timeout: peak RSS {free_kb / 1024:7.1f} MiB, "
                    f"{free_s:5.1f} s, exit {free_rc}   ({free_kb / base_kb:.2f}x baseline)"
                )
        finally:
            web.stop()


if __name__ == "__main__":
    main()
