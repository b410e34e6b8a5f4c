"""Promotion stripping: subscription pitches, newsletter sign-ups, "read also" teasers,
donation appeals and the like, removed from an extracted article.

Rooms: `strip` (the entry point and the share guard), `rules` (the rule files, loaded,
validated and compiled once; outlet overrides), `markup` (boxes the page names as
promotions), `text_rules` (phrase cues per language), `signals` (wording-free signals:
link targets, prices, headline lists, credit lines), `targets` (where a link goes: known
hosts and offer words of short paths, in many languages), `structure` (the box around a
block: forms, call-to-action links, rails, teaser cards, widgets).
"""

from pipelines.promo.rules import (
    KINDS,
    MAX_SHARE,
    RULES_VERSION,
    OutletPromoRules,
    PromoRuleError,
    PromoRules,
    compile_outlet_rules,
    load_rules,
    paragraph_hash,
)
from pipelines.promo.strip import strip_promotions

__all__ = [
    "KINDS",
    "MAX_SHARE",
    "RULES_VERSION",
    "OutletPromoRules",
    "PromoRuleError",
    "PromoRules",
    "compile_outlet_rules",
    "load_rules",
    "paragraph_hash",
    "strip_promotions",
]
