"""Crawl throughput bench: mediawatch end to end against bare trafilatura, news-please and
trafilatura's own CLI, on the same real pages served from 127.0.0.1.

The Zyte pages are repeated under unique URLs (each copy gets a unique marker in its first
paragraph, so repeats are not all exact duplicates) and listed in a sitemap. Printed per
system: pages/s from the wall time, the ratio to the baseline (bare ``trafilatura.extract``
in one process over the same pages, measured half before and half after the crawls so a
change in machine load weighs on both sides), CPU seconds per page (user + system of the
whole process tree: stable when other work shares the machine) and the peak memory (sum of
RSS of the process tree, sampled from /proc).

Usage: ``.venv/bin/python bench/throughput.py [--pages N] [--repeat K] [--only mediawatch,...]``
(news-please is installed on first use into ``.bench-envs/newsplease`` with pip.)
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "bench" / "zyte" / "html"
VENV_BIN = REPO / ".venv" / "bin"
NP_ENV = REPO / ".bench-envs" / "newsplease"


# ---------------------------------------------------------------- corpus and server


def load_corpus() -> list[str]:
    return [
        gzip.decompress(p.read_bytes()).decode("utf-8", "replace")
        for p in sorted(CORPUS.glob("*.html.gz"))
    ]


def make_pages(corpus: list[str], n: int) -> list[str]:
    """n pages cycling through the corpus, each with a unique token in its first paragraph."""
    pages = []
    for i in range(n):
        html = corpus[i % len(corpus)]
        pages.append(html.replace("</p>", f" (dispatch {i:06d})</p>", 1))
    return pages


def page_path(i: int) -> str:
    return f"/news/{i:06d}/story.html"


def _serve(pages: list[bytes], port_queue: Any) -> None:
    """Run in a child process, so serving does not share the bench's interpreter."""
    sitemap: bytes = b""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path
            ctype = "text/html; charset=utf-8"
            if path == "/robots.txt":
                body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
            elif path == "/sitemap.xml":
                body, ctype = sitemap, "application/xml"
            elif path.startswith("/news/"):
                try:
                    body = pages[int(path.split("/")[2])]
                except (ValueError, IndexError):
                    body = b""
            else:
                body = b""
            status = 200 if body else 404
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    base = f"http://127.0.0.1:{server.server_address[1]}"
    locs = "".join(f"<url><loc>{base}{page_path(i)}</loc></url>\n" for i in range(len(pages)))
    sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{locs}</urlset>\n"
    ).encode()
    port_queue.put(base)
    server.serve_forever()


class Server:
    def __init__(self, pages: list[str]) -> None:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        self.proc = ctx.Process(
            target=_serve, args=([p.encode("utf-8") for p in pages], queue), daemon=True
        )
        self.proc.start()
        self.base: str = queue.get(timeout=30)
        self.urls = [self.base + page_path(i) for i in range(len(pages))]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


# ---------------------------------------------------------------- measuring a process tree

_TICK = os.sysconf("SC_CLK_TCK")
_NAMES: dict[int, str] = {}


def _role(cmdline: str) -> str:
    """Which part of a crawl a process is, for the CPU breakdown."""
    if "forkserver" in cmdline or "spawn_main" in cmdline:
        return "cleaning workers"
    if "resource_tracker" in cmdline:
        return "resource tracker"
    if "crawler.crawlproc" in cmdline:
        return "crawl process (reactor, spool)"
    if "mediawatch crawl" in cmdline or cmdline.rstrip().endswith("crawl"):
        return "CLI (archive ingest)"
    return Path(cmdline.split(" ", 1)[0]).name or "?"


def _tree_rss(root: int, cpu: dict[int, float]) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over root and all its descendants, from /proc. RSS counts
    pages shared by the forkserver and its workers once per process; PSS splits them.
    Records each process's own CPU seconds in cpu: a worker reaped by a forkserver that
    nobody reaps never reaches the root's rusage."""
    children: dict[int, list[int]] = {}
    own: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        own[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    rss = pss = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        if pid in own:
            if pid not in cpu:
                try:
                    _NAMES[pid] = (
                        Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    )
                except OSError:
                    _NAMES[pid] = "?"
            cpu[pid] = max(cpu.get(pid, 0.0), own[pid])
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
                for line in fh:
                    if line.startswith(b"Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith(b"Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss


@dataclass
class Run:
    seconds: float
    cpu: float
    peak_rss: int
    returncode: int
    output: str = ""
    peak_pss: int = 0
    peak_first_half: int = 0  # RSS peak over the first half of the run: compare with the whole
    extra: dict[str, Any] = field(default_factory=dict)


def run_tree(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 3600,
) -> Run:
    """Run cmd, sampling the tree's memory and CPU (the larger of the reaped tree's rusage and
    the sum of the CPU each process of the tree was last seen with)."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - read back after the run
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    samples: list[tuple[float, int, int]] = []
    cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - started, *_tree_rss(proc.pid, cpu)))
            stop.wait(0.5)  # sampling /proc costs CPU the measured system would use

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    status = 0
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                proc.kill()
            time.sleep(0.05)
    finally:
        stop.set()
        sampler.join()
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read().decode("utf-8", "replace")
    peak = max((s[1] for s in samples), default=0)
    peak_pss = max((s[2] for s in samples), default=0)
    first = max((s[1] for s in samples if s[0] <= seconds / 2), default=0)
    cpu_seconds = max(usage.ru_utime + usage.ru_stime, sum(cpu.values()))
    roles: dict[str, float] = {}
    for pid, seconds_used in cpu.items():
        role = _role(_NAMES.get(pid, "?"))
        roles[role] = roles.get(role, 0.0) + seconds_used
    run = Run(
        seconds, cpu_seconds, peak, proc.returncode, text, peak_pss=peak_pss, peak_first_half=first
    )
    run.extra["cpu_by_role"] = {
        k: round(v, 1) for k, v in sorted(roles.items(), key=lambda kv: -kv[1])
    }
    return run


# ---------------------------------------------------------------- the systems


def bare_trafilatura(pages: list[str]) -> tuple[float, float]:
    """(seconds, cpu seconds) of trafilatura.extract over the pages, in this process."""
    import trafilatura

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for html in pages:
        trafilatura.extract(html)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def mediawatch(server: Server, n: int, workdir: Path) -> Run:
    config = workdir / "outlets.toml"
    config.write_text(f"""
[[outlet]]
name = "bench"
sitemaps = ["{server.base}/sitemap.xml"]
delay = 0
concurrency = 16
max_articles = {n}
revisit = false
every = "1h"
timeout = "2h"
""")
    db = workdir / "data" / "archive.duckdb"
    env = {**os.environ, "MEDIAWATCH_LOG_LEVEL": "INFO"}
    run = run_tree(
        [str(VENV_BIN / "mediawatch"), "crawl", "--config", str(config), "--db", str(db)],
        env=env,
        cwd=REPO,
    )
    if run.returncode == 0:
        import duckdb

        con = duckdb.connect(str(db), read_only=True)
        try:
            run.extra["articles"] = con.execute("SELECT count(*) FROM articles").fetchone()[0]  # type: ignore[index]
            run.extra["pages"] = con.execute("SELECT count(*) FROM pages").fetchone()[0]  # type: ignore[index]
            run.extra["skips"] = dict(
                con.execute(
                    "SELECT skip_reason, count(*) FROM pages WHERE skip_reason IS NOT NULL GROUP BY 1"
                ).fetchall()
            )
        finally:
            con.close()
    return run


NP_SCRIPT = r"""
import sys, time
from newsplease import NewsPlease
urls = open(sys.argv[1]).read().split()
chunk = int(sys.argv[2])
ok = 0
for k in range(0, len(urls), chunk):
    res = NewsPlease.from_urls(urls[k:k + chunk], request_args={"timeout": 60}, fetch_images=False)
    ok += sum(1 for a in res.values() if getattr(a, "maintext", None))
print("NP_OK", ok)
"""


def ensure_newsplease() -> Path | None:
    py = NP_ENV / "bin" / "python"
    if not py.exists():
        print("installing news-please into", NP_ENV, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(NP_ENV)], check=True)
        result = subprocess.run([str(NP_ENV / "bin" / "pip"), "install", "-q", "news-please"])
        if result.returncode != 0:
            return None
    return py


def newsplease(server: Server, workdir: Path, chunk: int) -> Run | None:
    py = ensure_newsplease()
    if py is None:
        return None
    urls = workdir / "np-urls.txt"
    urls.write_text("\n".join(server.urls) + "\n")
    script = workdir / "np_run.py"
    script.write_text(NP_SCRIPT)
    run = run_tree([str(py), str(script), str(urls), str(chunk)], cwd=workdir)
    m = re.search(r"NP_OK (\d+)", run.output)
    run.extra["articles"] = int(m.group(1)) if m else None
    return run


def trafilatura_cli(server: Server, workdir: Path) -> Run:
    """trafilatura --input-file: its per-host politeness queue, SLEEP_TIME and SSRF guard off."""
    import trafilatura

    cfg_text = (Path(trafilatura.__file__).parent / "settings.cfg").read_text()
    cfg_text = re.sub(r"(?m)^SLEEP_TIME = .*$", "SLEEP_TIME = 0", cfg_text)
    cfg_text = re.sub(r"(?m)^SSRF_PROTECTION = .*$", "SSRF_PROTECTION = off", cfg_text)
    cfg = workdir / "trafilatura.cfg"
    cfg.write_text(cfg_text)
    urls = workdir / "tf-urls.txt"
    urls.write_text("\n".join(server.urls) + "\n")
    out = workdir / "tf-out"
    run = run_tree(
        [
            str(VENV_BIN / "trafilatura"),
            "--input-file",
            str(urls),
            "--output-dir",
            str(out),
            "--config-file",
            str(cfg),
            "--parallel",
            "16",
        ],
        cwd=workdir,
    )
    run.extra["articles"] = len(list(out.glob("*"))) if out.exists() else 0
    return run


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pages", type=int, default=2000, help="pages served and crawled (default 2000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="timed runs of each system; the median is shown"
    )
    parser.add_argument(
        "--only",
        default="mediawatch,newsplease,trafilatura-cli",
        help="comma-separated systems besides the baseline",
    )
    parser.add_argument(
        "--np-chunk",
        type=int,
        default=250,
        help="URLs per NewsPlease.from_urls call (it starts one thread per URL)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    systems = [s for s in args.only.split(",") if s]

    corpus = load_corpus()
    pages = make_pages(corpus, args.pages)
    print(
        f"{len(pages)} pages ({len(corpus)} distinct Zyte pages), {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    half = len(pages) // 2
    base_runs: list[tuple[float, float]] = [bare_trafilatura(pages[:half])]

    results: dict[str, list[Run]] = {s: [] for s in systems}
    server = Server(pages)
    work = Path(tempfile.mkdtemp(prefix="mw-throughput-"))
    runners: dict[str, Callable[[Path], Run | None]] = {
        "mediawatch": lambda d: mediawatch(server, len(pages), d),
        "newsplease": lambda d: newsplease(server, d, args.np_chunk),
        "trafilatura-cli": lambda d: trafilatura_cli(server, d),
    }
    try:
        for k in range(args.repeat):
            for name in systems:
                d = work / f"{name}-{k}"
                d.mkdir()
                run = runners[name](d)
                if run is None:
                    print(f"{name}: not available", flush=True)
                    continue
                results[name].append(run)
                tail = (
                    "" if run.returncode == 0 else f" exit {run.returncode}: {run.output[-1500:]}"
                )
                print(
                    f"  {name} run {k + 1}: {run.seconds:.1f}s, cpu {run.cpu:.1f}s, peak RSS "
                    f"{run.peak_rss / 2**20:.0f} MiB (first half {run.peak_first_half / 2**20:.0f}), "
                    f"PSS {run.peak_pss / 2**20:.0f} MiB, {run.extra}{tail}",
                    flush=True,
                )
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work directory:", work)
    base_runs.append(bare_trafilatura(pages[half:]))
    base_s = sum(s for s, _ in base_runs)
    base_cpu = sum(c for _, c in base_runs)
    base_rate = len(pages) / base_s

    print(f"\nload now {os.getloadavg()[0]:.1f}")
    print(
        f"{'system':<28} {'pages/s':>8} {'ratio':>6} {'cpu ms/page':>12} {'RSS MiB':>8} {'PSS MiB':>8}"
        "  articles"
    )
    print(
        f"{'trafilatura.extract (1 proc)':<28} {base_rate:8.1f} {1.0:6.2f} "
        f"{1000 * base_cpu / len(pages):12.1f} {'-':>8} {'-':>8}  -"
    )
    for name in systems:
        runs = results[name]
        if not runs:
            continue
        seconds = statistics.median(r.seconds for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        peak = max(r.peak_rss for r in runs)
        pss = max(r.peak_pss for r in runs)
        rate = len(pages) / seconds
        print(
            f"{name:<28} {rate:8.1f} {rate / base_rate:6.2f} {1000 * cpu / len(pages):12.1f} "
            f"{peak / 2**20:8.0f} {pss / 2**20:8.0f}  {runs[-1].extra.get('articles')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
