"""Signals that catch a pitch on a site never seen, whatever its language and markup: where
its links go (pipelines/promo/targets.py), the price it names (pipelines/promo/signals.py),
the widget or teaser card it sits in (pipelines/promo/structure.py).
Each page in tests/promo_pages/ is a small article of a language no phrase list knows, with
its pitches and the hard negatives beside them (a story paragraph linking a fundraiser, a
fare the story quotes), cleaned on the real path (trafilatura, then the promo stage)."""

from __future__ import annotations

from pathlib import Path

import lxml.html
import pytest

from pipelines.clean import clean_article

PAGES = Path(__file__).resolve().parent / "promo_pages"


def _clean(name: str) -> tuple[list[str], list[str], list[tuple[str, str, str]]]:
    """(the page's paragraphs, the archived text's paragraphs, removed (kind, rule, text));
    the page is fetched from its canonical address."""
    html = (PAGES / name).read_text(encoding="utf-8")
    root = lxml.html.document_fromstring(html)
    paras = [
        " ".join(p.text_content().split())
        for p in root.iter("p", "h2")
        if p.getparent().tag == "div"
    ]
    cleaned = clean_article(html, root.find(".//link[@rel='canonical']").get("href"))
    assert cleaned.skip_reason is None
    kept = [" ".join(t.split()) for t in cleaned.article["text"].split("\n\n")]
    return paras, kept, [(r["kind"], r["rule"], r["text"]) for r in cleaned.removed]


@pytest.mark.parametrize(
    ("name", "pitches"),
    [
        (
            # a Patreon link and a same-site "/hirlevel" (newsletter) page, in Hungarian;
            # a story paragraph linking an article whose slug says "támogatás" stays
            "hu_link_targets.html",
            [
                ("donation", "signal.link:donation", "Ha fontosnak tartod"),
                ("newsletter", "signal.link:newsletter", "Minden reggel"),
            ],
        ),
        (
            # a 45-word offer with a price beside its checkout link, and a price per month
            # alone, in Indonesian; a fundraiser's sum and the tram fare stay
            "id_price_offer.html",
            [
                ("subscription", "signal.offer", "Penawaran khusus"),
                ("subscription", "signal.price", "Coba 7 hari"),
            ],
        ),
        (
            # a sign-up widget (a button, a heading, its small print) in Croatian; an
            # infographic's title beside its zoom button, a quote with its share button
            # and a section heading stay
            "hr_widgets.html",
            [
                ("social", "signal.box:controls", "Pridruži se"),
                ("social", "signal.box:controls", "Članovi zajednice"),
            ],
        ),
        (
            # a teaser card: a summary beside a headline linked to the site's e-paper, in
            # Lithuanian; a story paragraph with its own link to an older story stays
            "lt_card.html",
            [("read_also", "signal.box:card", "Taryba balsavo")],
        ),
        (
            # the sign-off under the story: 40 words beside a link to "/narocnina", in
            # Slovenian (a block this long only goes by its link at the end of the text)
            "sl_tail_pitch.html",
            [("subscription", "signal.link_tail", "Vse naše zgodbe")],
        ),
    ],
    ids=["link-targets", "price-offer", "widget", "card", "tail-pitch"],
)
def test_a_pitch_of_an_unknown_language_goes_by_its_links_and_price(
    name: str, pitches: list[tuple[str, str, str]]
) -> None:
    paras, kept, removed = _clean(name)
    assert [(k, r) for k, r, _ in removed] == [(k, r) for k, r, _ in pitches]
    assert all(t.startswith(p) for (_, _, t), (_, _, p) in zip(removed, pitches, strict=True))
    story = [p for p in paras if not any(p.startswith(s) for _, _, s in pitches)]
    assert kept == story


@pytest.mark.parametrize(
    ("lang", "teaser", "pitch", "kind"),
    [
        ("ru", "Читайте также: Мэр объявила новый график работ", "Подписывайтесь на наш канал в Telegram, чтобы не пропустить главное", "social"),
        ("uk", "Читайте також: Мерія оприлюднила новий графік робіт", "Підтримайте незалежну журналістику, щоб ми могли працювати далі", "donation"),
        ("id", "Baca juga: Wali kota umumkan jadwal baru pekerjaan jalan", "Ikuti kami di Google News untuk berita terbaru setiap hari", "social"),
        ("hu", "Kapcsolódó cikk: A polgármester bejelentette az új ütemtervet", "Iratkozz fel hírlevelünkre, és minden reggel elküldjük a legfontosabb híreket", "newsletter"),
        ("ro", "Citește și: Primăria a anunțat noul program al lucrărilor", "Descarcă aplicația noastră pentru a primi știrile zilei pe telefon", "app"),
        ("hr", "Pročitajte još: Gradonačelnica najavila novi raspored radova", "Pratite nas na Facebooku i Instagramu za najnovije vijesti iz grada", "social"),
        ("sk", "Čítajte tiež: Primátorka oznámila nový harmonogram prác", "Predplaťte si náš denník a čítajte všetky články bez obmedzení", "subscription"),
        ("el", "Διαβάστε επίσης: Η δήμαρχος ανακοίνωσε το νέο χρονοδιάγραμμα", "Κατεβάστε την εφαρμογή μας για να διαβάζετε τις ειδήσεις στο κινητό", "app"),
        ("ko", "관련기사: 시장, 새 공사 일정 발표", "뉴스레터 구독 신청하고 매일 아침 주요 뉴스를 받아보세요", "newsletter"),
        ("vi", "Xem thêm: Thị trưởng công bố lịch thi công mới", "Đăng ký nhận bản tin để nhận tin tức mới nhất mỗi sáng", "newsletter"),
        ("ar", "اقرأ أيضا: رئيسة البلدية تعلن جدول الأشغال الجديد", "تابعونا على فيسبوك وإنستغرام لمعرفة آخر أخبار المدينة", "social"),
        ("zh", "相关阅读", "下载人民日报客户端，随时随地阅读新闻", "app"),
    ],
)  # fmt: skip
def test_each_new_language_loses_its_teaser_and_its_tail_pitch(
    lang: str, teaser: str, pitch: str, kind: str
) -> None:
    from pipelines.promo import strip_promotions
    from tests.test_promo import FILLER, _article

    paras = [*FILLER[:4], teaser, *FILLER[4:], pitch]
    out, removed = strip_promotions(_article(paras, lang=lang, links=[0] * len(paras)))
    assert [(r["kind"], r["text"]) for r in removed] == [("read_also", teaser), (kind, pitch)]
    assert out["text"] == "\n\n".join(FILLER)


def test_a_long_block_linking_an_offer_goes_at_the_end_of_the_text_only() -> None:
    # in the middle, 40 words linking the offer page may be the story's own (a report on
    # the paper's plans); under the story's last paragraph they are its sign-off
    from pipelines.promo import strip_promotions
    from tests.test_promo import FILLER

    text = (
        "Everything from our newsroom on every device, the archive since 1998 and the evening "
        "edition included, for the readers who choose the plan that suits them and keep "
        "independent local reporting alive in the city"
    )
    block = {"kind": "p", "text": text, "link_chars": 17, "links": ["/narocnina"]}

    def removed(at: int) -> list[str]:
        blocks = [{"kind": "p", "text": t, "link_chars": 0} for t in FILLER]
        blocks.insert(at, block)
        article = {"title": "Tram line extended", "language": "en", "blocks": blocks}
        return [r["rule"] for r in strip_promotions(article)[1]]

    assert removed(3) == []
    assert removed(len(FILLER)) == ["signal.link_tail"]
