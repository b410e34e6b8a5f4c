"""Config validation: every error is one line naming the file, the outlet and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.outlets import ConfigError, load_config
from tests.conftest import run_cli

GOOD = """
[defaults]
delay = 2.0

[[outlet]]
name = "lemonde"
feeds = ["https://www.lemonde.fr/rss/une.xml"]
language = "fr"
every = "15m"

[[outlet]]
name = "bbc"
sitemaps = ["https://www.bbc.com/sitemaps/news.xml"]
cron = "*/30 * * * *"
delay = 0.5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "outlets.toml"
    path.write_text(text)
    return path


def test_good_config_applies_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    lemonde, bbc = config.outlets
    assert (
        lemonde.delay == 2.0 and lemonde.every_seconds == 900 and lemonde.domains == ("lemonde.fr",)
    )
    assert bbc.delay == 0.5 and bbc.cron == "*/30 * * * *" and bbc.every_seconds is None


X = 'name = "x"\nfeeds = ["https://a.example/f"]\n'  # a valid outlet to add one bad key to
BAD_OUTLETS = [  # (the [[outlet]] body, the outlet as the message names it, key, words)
    (X + 'feed = ["x"]', "'x'", "feed", "unknown key"),
    (X + 'article_pattern = "(unclosed"', "'x'", "article_pattern", "bad regular expression"),
    ('name = "x"', "'x'", "feeds", "at least one source"),
    ('name = "Bad Name"\nfeeds = ["https://a.example/f"]', "'Bad Name'", "name", "must match"),
    ('name = "x"\nfeeds = ["ftp://a.example/f"]', "'x'", "feeds", "not an http(s) URL"),
    (X + 'every = "often"', "'x'", "every", "duration"),
    (X + 'cron = "61 * * * *"', "'x'", "cron", "bad cron"),
    (X + 'delay = "slow"', "'x'", "delay", "must be a number"),
    (X + "concurrency = 0", "'x'", "concurrency", ">= 1"),
    (X + 'language = "French"', "'x'", "language", "ISO 639"),
]


@pytest.mark.parametrize(("snippet", "outlet", "key", "words"), BAD_OUTLETS)
def test_bad_outlet_names_file_outlet_and_key(
    tmp_path: Path, snippet: str, outlet: str, key: str, words: str
) -> None:
    path = write(tmp_path, f"[[outlet]]\n{snippet}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert f"outlet {outlet}" in message and f"key {key!r}" in message and words in message


def test_duplicate_name(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '\n[[outlet]]\nname = "bbc"\nfeeds = ["https://b.example/f"]\n')
    with pytest.raises(ConfigError, match=r"outlet 'bbc': key 'name': duplicate outlet name"):
        load_config(path)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[[outlet]\nname="))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_cli_reports_config_error_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, '[[outlet]]\nname = "x"\nfeeds = ["https://a.example/f"]\ndelai = 1\n')
    for command in (["outlets"], ["crawl", "--db", str(tmp_path / "a.duckdb")]):
        result = run_cli(*command, "--config", str(path))
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0
        assert "outlet 'x': key 'delai': unknown key" in result.stderr


def test_cli_lists_outlets_as_json(tmp_path: Path) -> None:
    result = run_cli("outlets", "--config", str(write(tmp_path, GOOD)), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert '"name": "lemonde"' in result.stdout and '"name": "bbc"' in result.stdout


def test_outlet_schedule_replaces_the_default_schedule(tmp_path: Path) -> None:
    text = (
        '[defaults]\ncron = "0 * * * *"\n\n[[outlet]]\nname = "a"\nfeeds = ["https://a.example/f"]\n'
        'every = "5m"\n\n[[outlet]]\nname = "b"\nfeeds = ["https://b.example/f"]\n'
    )
    a, b = load_config(write(tmp_path, text)).outlets
    assert (a.cron, a.every_seconds) == (None, 300)
    assert (b.cron, b.every_seconds) == ("0 * * * *", None)


def test_bad_promo_override_is_a_config_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[outlet]]\nname = "x"\nfeeds = ["https://a.example/f"]\nstrip_patterns = ["(oops"]\n',
    )
    with pytest.raises(ConfigError, match=r"outlet 'x': key 'strip_patterns'"):
        load_config(path)
    path = write(
        tmp_path,
        '[[outlet]]\nname = "x"\nfeeds = ["https://a.example/f"]\nstrip_selectors = ["div[["]\n',
    )
    with pytest.raises(ConfigError, match=r"outlet 'x': key 'strip_selectors'"):
        load_config(path)
