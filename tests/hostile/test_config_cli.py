"""Every kind of invalid config tests/test_outlets.py does not cover yet: refused at load with
one line naming the file, the outlet and the key; and through the CLI, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.outlets import ConfigError, load_config
from tests.conftest import REPO, run_cli

FEED = 'feeds = ["https://a.example/f"]'


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "outlets.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f'colour = 1\n[[outlet]]\nname = "x"\n{FEED}', "key 'colour': unknown top-level key"),
        (f'defaults = 3\n[[outlet]]\nname = "x"\n{FEED}', "key 'defaults': must be a table"),
        (
            f'[defaults]\ndelai = 1\n[[outlet]]\nname = "x"\n{FEED}',
            "[defaults]: key 'delai': unknown key",
        ),
        (
            f'[defaults]\nname = "y"\n[[outlet]]\nname = "x"\n{FEED}',
            "[defaults]: key 'name': unknown key",
        ),
        (f'[outlet]\nname = "x"\n{FEED}', "key 'outlet': use [[outlet]] tables"),
        ("", "no [[outlet]] defined"),
        ("# only a comment\n", "no [[outlet]] defined"),
        (f'user_agent = 5\n[[outlet]]\nname = "x"\n{FEED}', "key 'user_agent': must be a string"),
        (f"[[outlet]]\n{FEED}", "outlet #1: key 'name'"),
        (b'[[outlet]]\nname = "caf\xe9"\n', "not UTF-8 text"),
        ('[[outlet]]\nname = "x"\nfeeds = ["https://a.example/f"\n', "invalid TOML"),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path: Path, text: str | bytes, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and words in message


@pytest.mark.parametrize(
    ("snippet", "key", "words"),
    [
        ('user_agent = ["a"]', "user_agent", "must be a string"),
        ('revisit = "yes"', "revisit", "true or false"),
        ("max_articles = 0", "max_articles", ">= 1"),
        ("max_articles = 1.5", "max_articles", "must be an integer"),
        ("follow_depth = 2", "follow_depth", "unknown key"),  # validated once but never read: gone
        ("delay = -1", "delay", ">= 0"),
        ("delay = true", "delay", "must be a number"),
        ('timeout = "forever"', "timeout", "duration"),
        ('min_interval = "soon"', "min_interval", "duration"),
        ('max_interval = "0s"', "max_interval", "duration"),
        ("every = 0", "every", "positive"),
        ('every = "-5m"', "every", "duration"),
        ("cron = 5", "cron", "must be a string"),
        ("article_pattern = 5", "article_pattern", "must be a string"),
        ("language = 3", "language", "ISO 639"),
        ("domains = [3]", "domains", "non-empty strings"),
        ('strip_selectors = ["div[[["]', "strip_selectors", "bad CSS selector"),
        ('strip_patterns = ["(unclosed"]', "strip_patterns", "bad regular expression"),
        ("[outlet.extra]\na = 1", "extra", "unknown key"),
    ],
)
def test_bad_values_name_the_outlet_and_key(
    tmp_path: Path, snippet: str, key: str, words: str
) -> None:
    path = write(tmp_path, f'[[outlet]]\nname = "x"\n{FEED}\n{snippet}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and f"outlet 'x': key {key!r}" in message and words in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("feeds = 3", "feeds"),
        ('feeds = [""]', "feeds"),
        ('feeds = ["http://"]', "feeds"),
        ('sitemaps = ["file:///etc/passwd"]', "sitemaps"),
        ('start_urls = ["javascript:alert(1)"]', "start_urls"),
    ],
)
def test_bad_sources_are_refused(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"outlet 'x': key {key!r}"):
        load_config(write(tmp_path, f'[[outlet]]\nname = "x"\n{text}\n'))


# Each would make an outlet silently useless or a scheduler misbehave.
@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("delay = inf", "delay"),  # a crawl that never ends
        ("delay = nan", "delay"),  # nan compares false with every bound
        ("every = inf", "every"),  # a run scheduled at infinity
        ('min_interval = "2h"\nmax_interval = "1m"', "min_interval"),  # bounds the wrong way round
        ('domains = ["https://a.example/"]', "domains"),  # a URL, not a host: every article offsite
    ],
)
def test_values_that_cannot_work_are_refused(tmp_path: Path, snippet: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"key {key!r}"):
        load_config(write(tmp_path, f'[[outlet]]\nname = "x"\n{FEED}\n{snippet}\n'))


def test_a_directory_as_config_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config: Is a directory"):
        load_config(tmp_path)


@pytest.mark.parametrize("command", [["outlets"], ["crawl"], ["run"]])
def test_cli_refuses_a_bad_config_with_exit_2_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    """The daemon too: it must not start on a broken config."""
    path = write(tmp_path, f'[[outlet]]\nname = "x"\n{FEED}\nmax_articles = 0\n')
    result = (
        run_cli(*command, "--config", str(path), "--db", str(tmp_path / "a.duckdb"), timeout=60)
        if command != ["outlets"]
        else run_cli(*command, "--config", str(path), timeout=60)
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: ")
    assert "outlet 'x': key 'max_articles'" in result.stderr
    assert not (tmp_path / "a.duckdb").exists(), (
        "no archive is created for a config that is refused"
    )


def test_cli_names_an_unknown_outlet(tmp_path: Path) -> None:
    path = write(tmp_path, f'[[outlet]]\nname = "x"\n{FEED}\n')
    result = run_cli(
        "crawl", "--config", str(path), "--db", str(tmp_path / "a.duckdb"), "nope", timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {path}: no outlet named 'nope' (known: x)"


def test_cli_missing_config_file(tmp_path: Path) -> None:
    result = run_cli(
        "crawl",
        "--config",
        str(tmp_path / "none.toml"),
        "--db",
        str(tmp_path / "a.duckdb"),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'none.toml'}: config file not found"


# -- names that look like options (issue 13, item 8) ------------------------------------------


@pytest.mark.parametrize("name", ["-h", "--help", "-", "_private", "--config"])
def test_names_must_start_with_a_letter_or_digit(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f'[[outlet]]\nname = "{name}"\n{FEED}\n'))
    assert "key 'name'" in str(info.value) and "a letter or digit first" in str(info.value)


def test_allow_networks_must_be_networks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outlet 'x': key 'allow_networks': expected networks"):
        load_config(
            write(tmp_path, f'[[outlet]]\nname = "x"\n{FEED}\nallow_networks = ["intranet"]\n')
        )
    outlet = load_config(
        write(tmp_path, f'[[outlet]]\nname = "x"\n{FEED}\nallow_networks = ["10.20.0.0/16"]\n')
    ).get("x")
    assert [str(n) for n in outlet.allow_networks] == ["10.20.0.0/16"]


def test_the_crawl_subprocess_never_reads_an_outlet_name_as_an_option(tmp_path: Path) -> None:
    """An outlet name reaches `python -m crawler.crawlproc` as an argument: `--help` there once
    printed the usage, crawled nothing and exited 0, so the daemon showed the outlet healthy."""
    from crawler.scheduler.supervisor import start_crawl

    path = write(tmp_path, f'[[outlet]]\nname = "x"\n{FEED}\n')
    log = tmp_path / "crawl.log"
    proc = start_crawl(
        path, tmp_path / "a.duckdb", ["--help"], "run-1", log_path=log, die_with_parent=False
    )
    assert proc.wait(timeout=120) == 2
    assert f"error: {path}: no outlet named '--help' (known: x)" in log.read_text()


def _scrapy(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    scrapy = Path(sys.executable).parent / "scrapy"
    return subprocess.run(
        [str(scrapy), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **env},
    )


def test_scrapy_crawl_reads_mediawatch_config_and_names_a_wrong_outlet(tmp_path: Path) -> None:
    """`scrapy crawl outlet -a outlet=NAME` (issue 18): the config comes from MEDIAWATCH_CONFIG
    like for the mediawatch command; a name it does not hold is one line, not a traceback."""
    path = write(
        tmp_path, f'[[outlet]]\nname = "courrier"\n{FEED}\n[[outlet]]\nname = "herald"\n{FEED}\n'
    )
    env = {"MEDIAWATCH_CONFIG": str(path), "MEDIAWATCH_DB": str(tmp_path / "data" / "a.duckdb")}
    result = _scrapy("crawl", "outlet", "-a", "outlet=nope", env=env, cwd=REPO)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line or "Traceback" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert f"error: {path}: no outlet named 'nope' (known: courrier, herald)" in errors[0]
