"""The import rule: crawler -> pipelines -> archive. archive imports neither (and no Scrapy),
pipelines never imports crawler, only the Scrapy wrappers in pipelines touch Scrapy, and
nothing imports the CLI (crawler.cli, crawler.cli_archive, crawler.cli_daemon) but the CLI
itself. And every SQL statement lives in archive/: no other layer calls execute on a
connection or imports duckdb."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = {
    "crawler.cli",
    "crawler.cli_archive",
    "crawler.cli_daemon",
    "crawler.cli_serve",
    "crawler.cli_lake",
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return found


def test_imports_run_one_way() -> None:
    bad = []
    for layer in ("crawler", "pipelines", "archive"):
        for path in sorted((REPO / layer).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            for name in _imports(path):
                top = name.split(".")[0]
                if layer == "archive" and top in ("crawler", "pipelines", "scrapy", "twisted"):
                    bad.append(f"{module} imports {name}")
                if layer == "pipelines" and top == "crawler":
                    bad.append(f"{module} imports {name}")
                if (
                    layer == "pipelines"
                    and top in ("scrapy", "twisted")
                    and module != "pipelines.scrapy_pipelines"
                ):
                    bad.append(f"{module} imports {name}")
                if (
                    layer != "archive" and top == "duckdb"
                ):  # connections, errors, SQL: archive/ only
                    bad.append(f"{module} imports {name}")
                if name in CLI and module not in CLI:
                    bad.append(f"{module} imports the CLI ({name})")
    assert bad == []


def test_no_sql_outside_the_archive_layer() -> None:
    calls = []
    for layer in ("crawler", "pipelines"):
        for path in sorted((REPO / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr in (
                    "execute",
                    "executemany",
                    "sql",
                ):
                    calls.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
    assert calls == []
