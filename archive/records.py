"""The records that cross a stage, defined once: spider → cleaning → spool → ingest.

They are TypedDicts rather than classes because the pure functions keep trafilatura's
`extract()` shape (a JSON-ready dict, compared to golden files as it is) and the spool is
JSON: a TypedDict costs nothing at run time, and mypy checks every producer and reader
against the one definition. The spool (archive/spool.py) writes them as JSON lines stamped with
`v`; the same definitions drive the check a spool line passes before any SQL (`record_problem`) and the schema tables of docs/ARCHITECTURE.md
(`python -m archive.records`, kept in step by tests/test_records.py).

A key that is `NotRequired` may be absent in the spool (records of earlier versions, hand-
written ones); a `| None` value may be null. `v` is the record format version."""

import base64
import functools
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

RECORD_VERSION = 2  # 1: records before `v` existed (same fields); 2: typed records
MAX_FIELD_CHARS = (
    16 << 20
)  # over what a 10 MB page (the crawl's limit) can yield, gzip + base64 included


@dataclass(frozen=True)
class Range:
    """Bounds of an integer field: a value outside is a broken record, not a figure."""

    low: int
    high: int


U64 = Range(0, (1 << 64) - 1)
COUNT = Range(0, 1 << 40)


class Block(TypedDict):
    kind: Annotated[str, "p head list quote table code"]
    text: str
    link_chars: NotRequired[Annotated[int, "characters of the block inside links (link density)"]]
    links: NotRequired[
        Annotated[
            list[str], "up to 8 link targets: where a block sends the reader is a promo signal"
        ]
    ]


class RemovedBlock(TypedDict):
    position: Annotated[int, "index of the block in the extracted text"]
    kind: Annotated[
        str,
        "a promo kind (subscription newsletter read_also donation app social event shop) or credit",
    ]
    rule: Annotated[
        str,
        "which rule or signal: a phrase rule id, markup.*, signal.*, run.*, boilerplate.outlet, outlet.*",
    ]
    text: str


class Article(TypedDict):
    title: NotRequired[str | None]
    description: NotRequired[str | None]
    site_name: NotRequired[str | None]
    section: NotRequired[str | None]
    image_url: NotRequired[str | None]
    authors: NotRequired[list[str]]
    tags: NotRequired[list[str]]
    published_at: NotRequired[Annotated[str | None, "ISO 8601 with offset (archive/dates.py)"]]
    modified_at: NotRequired[Annotated[str | None, "ISO 8601 with offset"]]
    date_source: NotRequired[
        Annotated[
            str | None, "jsonld meta feed sitemap url htmldate: which source gave published_at"
        ]
    ]
    language: NotRequired[
        Annotated[
            str | None,
            "ISO 639-1: the declaration unless py3langid reads the text otherwise (p >= 0.95, 25+ words)",
        ]
    ]
    canonical_url: NotRequired[Annotated[str | None, "as the page says, absolute"]]
    og_url: NotRequired[str | None]
    paywalled: NotRequired[
        Annotated[bool, "schema.org isAccessibleForFree=false, or a paywall box around the text"]
    ]
    summary: NotRequired[Annotated[str | None, "editorial key-points box"]]
    blocks: NotRequired[Annotated[list[Block], "body blocks in order"]]
    text: Annotated[str, 'the blocks\' texts joined by "\\n\\n"']
    word_count: NotRequired[
        Annotated[
            int,
            "archive.text.word_count: \\w+ runs, each CJK character one word",
            Range(0, 1 << 31),
        ]
    ]
    page_kind: NotRequired[
        Annotated[str, "article listing empty challenge not_html: why it might not be an article"]
    ]
    detail: NotRequired[Annotated[str | None, "why the page is not an article, for a skip"]]
    promo_flagged: NotRequired[
        Annotated[bool, "the 20 % share guard fired: guessed promotions were kept"]
    ]


class Hints(TypedDict, total=False):
    """What the feed or sitemap entry said of the page, before it was fetched."""

    title: str | None
    published_at: Annotated[str | None, "ISO 8601"]
    lastmod: Annotated[str | None, "ISO 8601"]
    source: Annotated[str, "feed sitemap section"]
    source_url: str
    seen_as: Annotated[list[str], "other URLs the discovery found the page under"]


class _PageBase(TypedDict):
    type: Literal["page"]
    v: NotRequired[Annotated[int, "record format version (archive.records.RECORD_VERSION)"]]
    record_id: Annotated[str, "uuid4 hex: the ingest is idempotent by it"]
    outlet: str
    url: Annotated[str, "the URL the crawl asked for (the first of a redirect chain)"]
    run_id: NotRequired[str | None]
    final_url: NotRequired[Annotated[str | None, "after redirects"]]
    redirect_urls: NotRequired[list[str]]
    status: NotRequired[Annotated[int | None, "HTTP status", Range(0, 999)]]
    content_type: NotRequired[str | None]
    fetched_at: NotRequired[Annotated[str, "ISO 8601"]]
    size_bytes: NotRequired[Annotated[int | None, "bytes of the body", COUNT]]
    hints: NotRequired[Hints]
    language_hint: NotRequired[Annotated[str | None, "the outlet's configured language"]]
    skip_reason: NotRequired[
        Annotated[str | None, "why the page is not archived as an article (see Skip reasons)"]
    ]
    detail: NotRequired[
        Annotated[str | None, "one line on the skip, or a repair of the page's text"]
    ]


class PageItem(_PageBase):
    """What the spider yields for a fetched page: the cleaning stage turns it into a PageRecord."""

    html: NotRequired[
        Annotated[str, "the decoded page (pipelines/decode.py); never spooled as such"]
    ]


class PageRecord(_PageBase):
    """A page as the spool carries it to the ingest."""

    html_gz_b64: NotRequired[
        Annotated[str | None, "the page as fetched and decoded, gzip + base64"]
    ]
    extractor_version: NotRequired[Annotated[str | None, "pipelines.clean.PIPELINE_VERSION"]]
    article: NotRequired[Article | None]
    removed_blocks: NotRequired[list[RemovedBlock]]
    key: NotRequired[Annotated[str | None, "the article's URL key (pipelines.urls.article_key)"]]
    cross_site_canonical: NotRequired[
        Annotated[str | None, "another outlet's article this page names as canonical"]
    ]
    url_aliases: NotRequired[Annotated[list[str], "canonical forms of the other URLs of the page"]]
    seen_urls: NotRequired[Annotated[list[str], "raw spellings, as found"]]
    content_hash: NotRequired[
        Annotated[str | None, "pipelines.fingerprint.content_hash of the text"]
    ]
    bands: NotRequired[Annotated[list[int], "MinHash LSH band hashes", U64]]
    para_hashes: NotRequired[
        Annotated[
            list[list[str]], "[hash, first 300 chars] of the boundary blocks (boilerplate learning)"
        ]
    ]


class HttpStateRecord(TypedDict):
    """Conditional-GET validators of a feed, sitemap or section page."""

    type: Literal["http_state"]
    v: NotRequired[int]
    outlet: str
    url: str
    status: NotRequired[Annotated[int | None, "", Range(0, 999)]]
    etag: NotRequired[str | None]
    last_modified: NotRequired[str | None]
    changed: NotRequired[bool]


class RunStartRecord(TypedDict):
    type: Literal["run_start"]
    v: NotRequired[int]
    run_id: str
    outlet: str
    started_at: Annotated[str, "ISO 8601"]


class RunStats(TypedDict, total=False):
    requests: Annotated[int, "", COUNT]
    responses: Annotated[dict[str, int], "HTTP status -> responses"]
    skipped: Annotated[dict[str, int], "skip reason -> pages"]
    errors: Annotated[int, "", COUNT]
    articles_extracted: Annotated[int, "", COUNT]
    not_modified: Annotated[int, "sources answered 304", COUNT]
    failure: Annotated[str | None, "one line (crawler/failures.py)"]


class RunRecord(TypedDict):
    """The end of one outlet's crawl run."""

    type: Literal["run"]
    v: NotRequired[int]
    run_id: str
    outlet: str
    started_at: NotRequired[str | None]
    finished_at: NotRequired[str | None]
    status: NotRequired[Annotated[str | None, "ok failed stopped"]]
    finish_reason: NotRequired[Annotated[str | None, "Scrapy's close reason"]]
    stats: NotRequired[RunStats]


SpoolRecord = Union[PageRecord, HttpStateRecord, RunStartRecord, RunRecord]  # noqa: UP007 - a runtime alias
RECORD_TYPES: dict[str, type] = {
    "page": PageRecord,
    "http_state": HttpStateRecord,
    "run_start": RunStartRecord,
    "run": RunRecord,
}


# -- the check every record passes before SQL ---------------------------------------------------


def record_problem(record: dict[str, Any]) -> str | None:
    """Why this record cannot be ingested as it is (naming the field), or None when it can.
    A wrong type is refused here rather than deep in an INSERT, or worse, passed through:
    list("abc") would have made three authors."""
    kind = record.get("type")
    schema = RECORD_TYPES.get(kind) if isinstance(kind, str) else None
    if schema is None:
        return f"unknown record type {kind!r:.50}"
    why = _check_fields(record, schema, "")
    if why is None and kind == "page":
        why = _page_problem(record)  # type: ignore[arg-type]
    return why or _oversized(record, "")


def checked(value: dict[str, Any]) -> SpoolRecord:
    """The record a spool line holds, once it passed `record_problem` (ValueError otherwise):
    the one gate from untyped JSON to a typed record."""
    why = record_problem(value)
    if why:
        raise ValueError(why)
    return value  # type: ignore[return-value]  # checked field by field above


def _page_problem(r: PageRecord) -> str | None:
    if r.get("article") and not r.get("skip_reason"):
        for name in ("key", "content_hash"):
            value = r.get(name)
            if not isinstance(value, str) or not value.strip():
                return f"{name}: missing"
    for pair in r.get("para_hashes") or []:
        if len(pair) != 2:
            return "para_hashes: not a list of [hash, text] pairs"
    if r.get("html_gz_b64"):
        try:
            base64.b64decode(r["html_gz_b64"] or "", validate=True)
        except ValueError:
            return "html_gz_b64: not base64"
    return None


def _check_fields(value: dict[str, Any], schema: type, path: str) -> str | None:
    hints = _hints(schema)
    required = schema.__required_keys__  # type: ignore[attr-defined]
    for name, hint in hints.items():
        where = f"{path}{name}"
        present = value.get(name)
        if present is None:
            if name in required and not _nullable(hint):
                return f"{where}: missing"
            continue
        if why := _check(present, hint, where):
            return why
        if name in required and isinstance(present, str) and not present.strip():
            return f"{where}: empty"
    return None


def _check(value: Any, hint: Any, where: str) -> str | None:
    base, rng = _unwrap(hint)
    if base is Any:
        return None
    origin = get_origin(base)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(base) if a is not type(None)]
        if value is None and len(options) < len(get_args(base)):
            return None
        return _check(value, options[0], where) if len(options) == 1 else None
    if origin is Literal:
        return (
            None
            if value in get_args(base)
            else f"{where}: {value!r:.40} is not one of {get_args(base)}"
        )
    if origin is list:
        if not isinstance(value, list):
            return f"{where}: expected a list, got {json_kind(value)}"
        (item,) = get_args(base)
        for i, v in enumerate(value):
            if why := _check(v, Annotated[item, rng] if rng else item, f"{where}[{i}]"):
                return _list_message(where, item, rng) or why
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"{where}: expected an object, got {json_kind(value)}"
        _, item = get_args(base)
        for k, v in value.items():
            if why := _check(v, item, f"{where}.{k}"):
                return why
        return None
    if isinstance(base, type) and hasattr(base, "__required_keys__"):  # a nested TypedDict
        if not isinstance(value, dict):
            return f"{where}: expected an object, got {json_kind(value)}"
        return _check_fields(value, base, f"{where}.")
    if base is int:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{where}: expected a number, got {json_kind(value)}"
        low, high = (rng.low, rng.high) if rng else (-(1 << 63), (1 << 63) - 1)
        if not low <= value <= high:
            return (
                f"{where}: {value:.3g} is out of range"
                if abs(value) > 1e15
                else f"{where}: {value} is out of range"
            )
        return None
    if base is bool:
        return (
            None
            if isinstance(value, bool)
            else f"{where}: expected true or false, got {json_kind(value)}"
        )
    if base is str:
        return (
            None
            if isinstance(value, str)
            else f"{where}: expected a string, got {json_kind(value)}"
        )
    return None


def _list_message(where: str, item: Any, rng: Range | None) -> str | None:
    """The messages users know for the common list fields."""
    if item is int and rng == U64:
        return f"{where}: not a list of unsigned 64-bit integers"
    if item is str:
        return f"{where}: not a list of strings"
    return None


def _unwrap(hint: Any) -> tuple[Any, Range | None]:
    rng = None
    while True:
        origin = get_origin(hint)
        if origin is Annotated:
            args = get_args(hint)
            rng = next((a for a in args[1:] if isinstance(a, Range)), rng)
            hint = args[0]
        elif origin is NotRequired:
            hint = get_args(hint)[0]
        else:
            return hint, rng


def _nullable(hint: Any) -> bool:
    base, _ = _unwrap(hint)
    return get_origin(base) in (Union, types.UnionType) and type(None) in get_args(base)


@functools.cache
def _hints(schema: type) -> dict[str, Any]:
    """A schema's field types, resolved once: get_type_hints costs ~0.1 ms a call, and every
    field of every spool record is checked."""
    return get_type_hints(schema, include_extras=True)


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words, for messages about a record."""
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _oversized(value: Any, path: str) -> str | None:
    """The first string over MAX_FIELD_CHARS, by where it is in the record."""
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:
            return f"{path or 'field'}: {len(value) / (1 << 20):.0f} MB, over the {MAX_FIELD_CHARS >> 20} MB a field may hold"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if why := _oversized(v, f"{path}.{k}" if path else str(k)):
                return why
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if why := _oversized(v, f"{path}[{i}]"):
                return why
    return None


# -- the schema tables of docs/ARCHITECTURE.md ---------------------------------------------------

DOCUMENTED = (
    PageItem,
    PageRecord,
    Article,
    Block,
    RemovedBlock,
    Hints,
    HttpStateRecord,
    RunStartRecord,
    RunRecord,
    RunStats,
)


def schema_markdown() -> str:
    """One table per record, from the definitions above."""
    parts = []
    for schema in DOCUMENTED:
        required = schema.__required_keys__
        parts.append(
            f"**{schema.__name__}**" + (f": {schema.__doc__.strip()}" if schema.__doc__ else "")
        )
        parts.append("\n| key | type | note |\n|---|---|---|")
        for name, hint in _hints(schema).items():
            notes = [a for a in get_args(_strip_not_required(hint))[1:] if isinstance(a, str) and a]
            optional = "" if name in required else " (may be absent)"
            parts.append(f"| {name} | {_type_name(hint)}{optional} | {'; '.join(notes)} |")
        parts.append("")
    return "\n".join(parts)


def _strip_not_required(hint: Any) -> Any:
    return get_args(hint)[0] if get_origin(hint) is NotRequired else hint


def _type_name(hint: Any) -> str:
    base, _ = _unwrap(hint)
    origin = get_origin(base)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(base))
    if origin is Literal:
        return " ".join(f"`{a}`" for a in get_args(base))
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(base))}]"
    return "null" if base is type(None) else getattr(base, "__name__", str(base))


BEGIN, END = "<!-- records:begin -->", "<!-- records:end -->"


def with_schema(doc: str) -> str:
    """The document with the generated tables between its two markers."""
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{schema_markdown()}{END}{tail}"


if __name__ == "__main__":  # python -m archive.records [--update docs/ARCHITECTURE.md]
    if sys.argv[1:2] == ["--update"]:
        path = Path(sys.argv[2])
        path.write_text(with_schema(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(schema_markdown())
