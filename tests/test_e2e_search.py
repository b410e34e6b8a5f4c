"""End to end, on both backends: a crawl of an outlet publishing in seven languages, then
`mediawatch search` finds each article by another inflection of its words (each language
stemmed by its own rules), and only that article."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.fakeweb import FakeWeb

# language -> (the word searched, which the article only has inflected otherwise, the article)
ARTICLES = {
    "fr": ("manifestation", "Les manifestations des boulangers contre le prix de la farine",
           "Les manifestations se sont multipliées cette semaine dans plusieurs villes de la région. "
           "Les artisans réclament une baisse des taxes sur l'énergie, dont le coût a doublé en deux ans, "
           "et une aide pour moderniser leurs fours. Le ministre a promis de recevoir leurs représentants "
           "avant la fin du mois, sans prendre d'engagement sur le calendrier des mesures annoncées."),
    "en": ("negotiated", "Unions keep negotiating over the new rail timetable",
           "Representatives of the drivers and the operator spent a third day negotiating on Thursday, "
           "with both sides saying that the talks had moved forward on night shifts but not on pay. "
           "The operator wants the new timetable in place by the spring, when two new lines open, and "
           "the unions have said they will not sign anything before their members have been consulted."),
    "de": ("Verhandlung", "Verhandlungen über den Tarifvertrag gehen weiter",
           "Die Verhandlungen zwischen den Gewerkschaften und den Arbeitgebern sind am Mittwoch in die "
           "dritte Runde gegangen. Strittig sind vor allem die Laufzeit des Vertrags und ein Ausgleich "
           "für die gestiegenen Preise. Beide Seiten erklärten nach dem Treffen, man sei sich in einigen "
           "Punkten nähergekommen, eine Einigung sei aber vor dem Ende des Monats nicht zu erwarten."),
    "es": ("agricultor", "Los agricultores protestan por el precio del agua",
           "Cientos de agricultores se concentraron el martes frente a la sede del gobierno regional para "
           "protestar por la subida del precio del agua de riego. Los manifestantes aseguran que la nueva "
           "tarifa hará imposible mantener muchas explotaciones familiares, mientras el gobierno defiende "
           "que la medida es necesaria para financiar la reparación de los canales más antiguos."),
    "it": ("biblioteca", "Le biblioteche comunali restano aperte la sera",
           "Da lunedì le biblioteche della città resteranno aperte fino alle ventidue in tutti i quartieri, "
           "una misura chiesta da anni dagli studenti universitari e dalle associazioni di lettori. Il "
           "comune ha assunto venti nuovi addetti per coprire i turni serali e prevede di valutare "
           "l'esperimento dopo sei mesi, contando gli ingressi e i prestiti registrati in ogni sede."),
    "nl": ("fietser", "Fietsers krijgen meer ruimte in de binnenstad",
           "De gemeente gaat de komende twee jaar de belangrijkste straten van de binnenstad opnieuw "
           "inrichten, zodat fietsers en voetgangers meer ruimte krijgen. Auto's mogen er straks alleen "
           "nog stapvoets rijden. Winkeliers zijn verdeeld: sommigen verwachten meer klanten, anderen "
           "vrezen dat bezoekers van buiten de stad wegblijven als parkeren moeilijker wordt."),
    "pt": ("pescador", "Pescadores do norte pedem apoio contra a subida do gasóleo",
           "Os pescadores da costa norte reuniram-se no porto na sexta-feira para pedir ao governo um apoio "
           "ao gasóleo, cujo preço subiu mais de trinta por cento desde o início do ano. Muitos barcos "
           "ficaram em terra nas últimas semanas porque a venda do peixe já não cobre as despesas de cada "
           "saída, e as associações do setor temem que algumas empresas não consigam sobreviver ao inverno."),
}  # fmt: skip


def _page(lang: str, title: str, text: str, day: int) -> str:
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta property="article:published_time" content="2024-05-{day:02d}T08:00:00Z"></head>'
        f"<body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1><p>{text}</p>"
        f"<p>{text}</p></article></body></html>"
    )


def _outlet() -> FakeWeb:
    web = FakeWeb("127.0.0.1")
    links = []
    for day, (lang, (_, title, text)) in enumerate(ARTICLES.items(), start=10):
        path = f"/2024/05/{day}/{lang}"
        web.add(path, _page(lang, title, text, day))
        links.append(f"<item><title>{title}</title><link>{web.base}{path}</link></item>")
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Babel</title>{"".join(links)}</channel></rss>'
    web.add("/feed.xml", feed, content_type="application/rss+xml")
    return web


def test_each_language_is_found_by_its_own_stemming(tmp_path: Path, backend: str) -> None:
    web = _outlet().start()
    try:
        config = tmp_path / "outlets.toml"
        config.write_text(
            f'[defaults]\ndelay = 0\n\n[[outlet]]\nname = "babel"\nfeeds = ["{web.base}/feed.xml"]\n'
            'article_pattern = "/20\\\\d\\\\d/"\n'
        )
        crawl = run_cli("crawl", "--config", str(config), "--db", backend)
        assert crawl.returncode == 0, crawl.stderr
    finally:
        web.stop()
    for lang, (word, title, text) in ARTICLES.items():
        assert word.lower() not in f"{title} {text}".lower().split(), "an inflection, not the word"
        found = run_cli("search", word, "--db", backend, "--format", "json")
        assert found.returncode == 0, found.stderr
        hits = json.loads(found.stdout)
        assert [(h["language"], h["title"]) for h in hits] == [(lang, title)], (lang, hits)
        assert "**" in hits[0]["snippet"], "the matched inflection is marked"
