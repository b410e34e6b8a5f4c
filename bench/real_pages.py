"""Cleaning quality on real pages of real outlets, next to plain trafilatura, in one run.

The pages are one of the sets of `bench/realset.py`: `--set realpages` (the default; 140 news
pages of 104 publishers, where the promo signals were tuned) or `--set zyte` (the 181 Zyte
benchmark pages, labelled on the control's output and never tuned on). Three systems see the
same bytes:

- plain ``trafilatura.extract`` with its defaults;
- the control: ``trafilatura.extract(favor_precision=True, include_comments=False)``, the
  two options our cleaning builds on;
- mediawatch: the path of ``mediawatch extract`` (``pipelines.decode`` then
  ``pipelines.clean.clean_article``); a page counts with its text only where it is archived.

Printed: P/R/F1 (the Zyte shingle metric, NFC on both sides) and CPU ms/page, overall and
per language; the pages not archived and why; every block the promo stage removed, judged
against the truth (removing article text is an error); the output lines that are not article
text, grouped by the kind given in the set's hand-made labels (page id, kind, line, source);
and promo recall / precision on those labels.

The figures are also printed per group (`grouping`): on realpages per half of a split by
publisher (A is where signals were tuned, B the held-out check); on Zyte by whether the outlet
also has pages in realpages ("seen") or not ("unseen", the fair figure).

Usage: ``.venv/bin/python bench/real_pages.py [--set zyte] [--limit N] [--worst K] [--show-leaks] [--dump-candidates FILE]``
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.extract_quality import corpus_scores, page_scores  # noqa: E402
from bench.realset import (  # noqa: E402
    DEFAULT_DATA,
    PROMO_KINDS,
    SETS,
    Page,
    candidates,
    contains,
    control,
    half,
    host,
    hosts,
    is_article_text,
    load,
    load_labels,
    nfc,
    tokens,
)
from bench.realset import LABELS as LABELS  # noqa: E402  (bench/real_recurring.py reads it here)


def grouping(name: str) -> tuple[str, Callable[[Page], str]]:
    """How a set's figures are split: realpages by publisher half (A tuned, B held out);
    Zyte by whether the outlet (host) also has pages in realpages, where signals were tuned."""
    if name == "realpages":
        return "half", half
    tuned = hosts(DEFAULT_DATA)
    return "outlet", lambda page: "seen" if host(page.url) in tuned else "unseen"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=sorted(SETS), default="realpages", dest="pageset")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data", type=Path, default=None, help="the pages (default: the set's)")
    ap.add_argument("--labels", type=Path, default=None, help="the labels (default: the set's)")
    ap.add_argument(
        "--worst", type=int, default=0, help="list the K pages where ours loses most to the control"
    )
    ap.add_argument(
        "--dump-candidates",
        type=Path,
        default=None,
        help="write every non-article line any system outputs (TSV: page, systems, line) for labelling",
    )
    ap.add_argument("--show-removed", action="store_true", help="print every removed block")
    ap.add_argument(
        "--show-leaks", action="store_true", help="print the labelled promotional lines we keep"
    )
    args = ap.parse_args(argv)
    args.data = args.data or SETS[args.pageset][0]
    args.labels = args.labels or SETS[args.pageset][1]

    import trafilatura

    from pipelines.clean import PIPELINE_VERSION, clean_article
    from pipelines.decode import decode_html

    pages = load(args.data, args.limit)
    labels = load_labels(args.labels)
    split, group = grouping(args.pageset)
    groups = sorted({group(p) for p in pages})
    outcome: dict[str, Any] = {}

    def ours(page: Page) -> str:
        html, _note = decode_html(page.raw)
        cleaned = clean_article(html, page.url)
        outcome[page.pid] = cleaned
        return "" if cleaned.skip_reason else str(cleaned.article["text"])

    systems: dict[str, Callable[[Page], str]] = {
        "trafilatura defaults": lambda p: trafilatura.extract(p.raw) or "",
        "control (favor_precision, no comments)": control,
        "mediawatch extract": ours,
    }
    for fn in systems.values():  # warm-up: imports, caches, the language model
        fn(pages[0])
    preds: dict[str, list[str]] = {n: [] for n in systems}
    spent = dict.fromkeys(systems, 0.0)
    for page in pages:
        for name, fn in systems.items():
            start = time.process_time()
            preds[name].append(nfc(fn(page)))
            spent[name] += time.process_time() - start
    truths = [p.truth for p in pages]

    print(
        f"{args.pageset}: {len(pages)} pages from {args.data}, labels {args.labels.name}; "
        f"mediawatch {PIPELINE_VERSION}"
    )
    print(f"{'system':<40} {'F1':>6} {'P':>6} {'R':>6} {'CPU ms/page':>11}")
    scores = {}
    for name in systems:
        f1, p, r = scores[name] = corpus_scores(zip(preds[name], truths, strict=True))
        print(f"{name:<40} {f1:6.3f} {p:6.3f} {r:6.3f} {spent[name] * 1000 / len(pages):11.1f}")

    ctl, mine = list(systems)[1], list(systems)[2]
    print(
        f"  mediawatch - control: F1 {scores[mine][0] - scores[ctl][0]:+.4f} (target +0.010), "
        f"R {scores[mine][2] - scores[ctl][2]:+.4f} (target >= -0.005); CPU "
        f"{spent[mine] / max(1e-9, spent[ctl]):.2f}x the control"
    )
    for h in groups:
        idx = [i for i, p in enumerate(pages) if group(p) == h]
        cf = corpus_scores((preds[ctl][i], truths[i]) for i in idx)
        mf = corpus_scores((preds[mine][i], truths[i]) for i in idx)
        outlets = len({pages[i].publisher for i in idx})
        print(
            f"  {split} {h} ({len(idx)} pages, {outlets} outlets): "
            f"control {cf[0]:.3f} (P {cf[1]:.3f} R {cf[2]:.3f}), mediawatch {mf[0]:.3f} (P {mf[1]:.3f} R {mf[2]:.3f})"
        )
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, page in enumerate(pages):
        by_lang[page.lang].append(i)
    print("\nper language (truth language by py3langid): pages, control F1, mediawatch F1 (P / R)")
    for lang, idx in sorted(by_lang.items(), key=lambda kv: -len(kv[1])):
        cf = corpus_scores((preds[ctl][i], truths[i]) for i in idx)
        mf = corpus_scores((preds[mine][i], truths[i]) for i in idx)
        print(f"  {lang:<4} {len(idx):>3}  {cf[0]:.3f}  {mf[0]:.3f} ({mf[1]:.3f} / {mf[2]:.3f})")

    print("\nnot archived:")
    skipped = [(p, outcome[p.pid]) for p in pages if outcome[p.pid].skip_reason]
    for page, cleaned in skipped:
        print(
            f"  {page.pid}: {cleaned.skip_reason} ({len(tokens(page.truth))} true words, lang {page.lang})"
        )
    print(f"  {len(skipped)} of {len(pages)}")

    removed_total = removed_article = article_tokens_removed = truth_promo = 0
    truth_promos = load_labels(args.labels, source="truth")
    truth_tokens_all = sum(len(tokens(p.truth)) for p in pages)
    print("\nremoved blocks judged against the truth:")
    for page in pages:
        for block in outcome[page.pid].removed:
            removed_total += 1
            article = is_article_text(block["text"], page)
            if article and any(
                k in PROMO_KINDS and (contains(block["text"], lab) or contains(lab, block["text"]))
                for k, lab in truth_promos.get(page.pid, [])
            ):
                truth_promo += 1  # the truth keeps it, the labels call it a promotion
                print(
                    f"  [TRUTH HOLDS A PROMO] {page.pid} {block['kind']}/{block['rule']}: {block['text'][:110]!r}"
                )
                continue
            if article:
                removed_article += 1
                article_tokens_removed += len(tokens(block["text"]))
            if article or args.show_removed:
                tag = "ARTICLE TEXT" if article else "ok"
                print(
                    f"  [{tag}] {page.pid} {block['kind']}/{block['rule']}: {block['text'][:110]!r}"
                )
    print(
        f"  {removed_total} removed, {truth_promo} of them promotions the truth holds, "
        f"{removed_article} article text; article tokens removed: "
        f"{article_tokens_removed} of {truth_tokens_all} ({100 * article_tokens_removed / max(1, truth_tokens_all):.2f} %)"
    )

    leaked: Counter[str] = Counter()
    leaked_pages: dict[str, set[str]] = defaultdict(set)
    for page, text in zip(pages, preds[mine], strict=True):
        page_labels = labels.get(page.pid, [])
        for line in text.split("\n"):
            if not line.strip() or is_article_text(line, page):
                continue
            kind = next(
                (k for k, lab in page_labels if contains(line, lab) or contains(lab, line)),
                "unlabelled",
            )
            leaked[kind] += 1
            leaked_pages[kind].add(page.pid)
    print("\nmediawatch output lines that are not article text, by labelled kind:")
    for kind, n in leaked.most_common():
        print(f"  {kind:<14} {n:>4} lines on {len(leaked_pages[kind])} pages")

    in_control: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    in_extracted = stripped = 0
    kept_promos: list[tuple[str, str, str, str]] = []
    for i, page in enumerate(pages):
        cleaned = outcome[page.pid]
        if cleaned.skip_reason:
            continue
        extracted = str(cleaned.extracted.get("text") or "")
        for kind, line in labels.get(page.pid, []):
            if kind not in PROMO_KINDS:
                continue
            gone = not contains(preds[mine][i], line)
            if contains(preds[ctl][i], line):
                in_control[group(page)] += 1
                caught[group(page)] += gone
            if contains(extracted, line):
                in_extracted += 1
                stripped += gone
            if not gone:
                kept_promos.append((kind, group(page), page.pid, line))
    n_labels = sum(len(v) for v in labels.values())
    removed_nonarticle = removed_total - removed_article
    print(f"\npromotions ({n_labels} labelled lines in {args.labels.name}):")
    n_caught, n_control = sum(caught.values()), sum(in_control.values())
    by_group = "; ".join(
        f"{split} {h} {caught[h]} of {in_control[h]} ({caught[h] / max(1, in_control[h]):.3f})"
        for h in groups
    )
    print(
        f"  recall against the control's leaks: {n_caught} of {n_control} "
        f"({n_caught / max(1, n_control):.3f}); {by_group}"
    )
    print(
        f"  promo stage recall (lines our extraction kept): {stripped} of {in_extracted} "
        f"({stripped / max(1, in_extracted):.3f})"
    )
    print(
        f"  removal precision (removed blocks that are not article text): {removed_nonarticle} of "
        f"{removed_total} ({removed_nonarticle / max(1, removed_total):.3f})"
    )

    if args.show_leaks:
        print(f"\nlabelled promotional lines still in our text (kind, {split}, page, line):")
        for kind, h, pid, line in sorted(kept_promos):
            print(f"  {kind:<12} {h} {pid}: {line[:110]!r}")

    if args.worst:
        rows = []
        for page, a, b in zip(pages, preds[ctl], preds[mine], strict=True):
            rows.append(
                (
                    _f1(b, page.truth) - _f1(a, page.truth),
                    page.pid,
                    _f1(a, page.truth),
                    _f1(b, page.truth),
                )
            )
        rows.sort()
        print(f"\nworst {args.worst} pages against the control:")
        for delta, pid, fa, fb in rows[: args.worst]:
            print(f"  {delta:+.3f} control={fa:.3f} ours={fb:.3f} {pid}")

    if args.dump_candidates:
        _dump(args.dump_candidates, pages, preds, outcome)
    return 0


def _f1(pred: str, truth: str) -> float:
    p, r = page_scores(pred, truth)
    p, r = p or 0.0, r or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def _dump(
    path: Path, pages: list[Page], preds: dict[str, list[str]], outcome: dict[str, Any]
) -> None:
    """Every line some system outputs that is not article text: the list to label by hand."""
    import trafilatura

    rows = []
    for i, page in enumerate(pages):
        seen: dict[str, set[str]] = {}
        texts = {name: preds[name][i] for name in preds}
        texts["mediawatch before promo"] = str(outcome[page.pid].extracted.get("text") or "")
        texts["trafilatura favor_recall"] = nfc(
            trafilatura.extract(page.raw, favor_recall=True) or ""
        )
        for name, text in texts.items():
            for line in candidates(text, page):
                seen.setdefault(line, set()).add(name)
        for line, names in seen.items():
            rows.append((page.pid, ",".join(sorted(names)), line))
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", lineterminator="\n").writerows(rows)
    print(f"\n{len(rows)} candidate lines written to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
