"""The editorial key-points box ("L'essentiel", "Key points"): kept as the summary, out of the body."""

from __future__ import annotations

import re

from lxml.html import HtmlElement

from pipelines.extract.common import _norm

# "Key points" boxes: class/id names and visible labels (several languages).
_SUMMARY_CLASS = re.compile(
    r"key[-_ ]?points?|keypoints|key[-_ ]?takeaways?|takeaways|essentiels?|highlights"
    r"|at[-_]a[-_]glance|story[-_]highlights|article[-_]summary|summary[-_]box|tl[-_]?dr"
    r"|en[-_]bref|a[-_]retenir|key[-_]facts|das[-_]wichtigste|auf[-_]einen[-_]blick",
    re.I,
)


_SUMMARY_LABEL = re.compile(
    r"^\W*(?:les essentiels|l['’]essentiel|à retenir|ce qu['’]il faut retenir|en bref|points? clés?"
    r"|key points|key takeaways|takeaways|highlights|at a glance|in brief|in short|tl;?dr"
    r"|das wichtigste|auf einen blick|in kürze|lo (?:más )?(?:importante|esencial)|claves"
    r"|en resumen|in breve|punti chiave|em resumo|pontos-chave)\b",
    re.I,
)


def _text_of(el: HtmlElement) -> str:
    return _norm(el.text_content())


def _find_summary(tree: HtmlElement) -> tuple[str, list[HtmlElement]] | None:
    """An editorial key-points box near the top of the body: (points text, elements to
    take out of the body).

    Recognised by a class/id name or a visible label ("Les essentiels", "Key points"...),
    it must hold a list of at least two sentence-like points and come before most of the
    article text, so a standfirst, a sidebar or a teaser list is not taken for it. A label
    that sits directly in the article container takes only itself and the list after it,
    never the container (that would remove the article).
    """
    body = tree.find(".//body")
    if body is None:
        return None
    candidates: list[tuple[HtmlElement, list[HtmlElement]]] = []
    for el in body.iter("div", "section", "aside", "ul", "ol", "details", "figure"):
        name = f"{el.get('class') or ''} {el.get('id') or ''}"
        if name.strip() and _SUMMARY_CLASS.search(name):
            candidates.append((el, [el]))
    for el in body.iter("h2", "h3", "h4", "h5", "strong", "b", "p", "summary", "span"):
        own = el.text  # the label's own text: cheap, and a label is never deeply nested
        if not (own and len(own) < 80 and _SUMMARY_LABEL.match(own)):
            continue
        label = el
        while label.getparent() is not None and label.getparent().tag in (
            "p",
            "strong",
            "b",
            "span",
        ):
            label = label.getparent()
        parent = label.getparent()
        if parent is None or parent is body:
            continue
        if _has_prose(parent):
            nxt = label.getnext()
            if nxt is not None and nxt.tag in ("ul", "ol"):
                candidates.append((nxt, [label, nxt]))
        else:
            candidates.append((parent, [parent]))
    for box, remove in candidates:
        items = [t for t in (_text_of(li) for li in box.iter("li")) if t]
        if len(items) < 2:
            continue
        text = "\n".join(items)
        # key points are sentences, not a list of teaser links or a sidebar widget
        if len(text) > 2000 or len(box.xpath(".//a")) > len(items) or len(text) / len(items) < 40:
            continue
        if box.xpath(_CHROME_ANCESTOR) or _has_prose(box):
            continue
        # "at the top": at most two long paragraphs before the box
        before = 0
        for p in box.itersiblings(preceding=True):
            before += sum(1 for x in p.iter("p") if len(x.text_content()) > 120)
        parent = box.getparent()
        while parent is not None and parent is not body and before <= 2:
            for sib in parent.itersiblings(preceding=True):
                before += sum(1 for x in sib.iter("p") if len(x.text_content()) > 120)
            parent = parent.getparent()
        if before > 2:
            continue
        return text, remove
    return None


def _has_prose(el: HtmlElement) -> bool:
    """Holds article paragraphs (long <p> outside lists): an article container, not a box."""
    return any(
        len(p.text_content()) > 200 and not any(a.tag == "li" for a in p.iterancestors())
        for p in el.iter("p")
    )


_CHROME_ANCESTOR = (  # page chrome around (or being) the box; a box may itself be an <aside>
    "ancestor::nav|ancestor::footer|ancestor::header|ancestor::aside"
    "|ancestor-or-self::*[contains(@class,'sidebar') or contains(@class,'widget')"
    " or contains(@class,'related') or contains(@class,'trending') or contains(@id,'sidebar')]"
)


def _remove(el: HtmlElement) -> None:
    """Remove an element but keep its tail text in the tree."""
    if el.getparent() is not None:
        el.drop_tree()
