"""The words people use for canonical entities and fields in Czech, Slovak and English.

Mapping files and search accept any of them (``Firma``, ``odběratel``, ``customer`` all mean
Account). Matching ignores case and diacritics, so ``odberatel`` finds ``odběratel`` too.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# entity -> language -> terms (singular and the common plural / synonyms)
ENTITY_TERMS: dict[str, dict[str, tuple[str, ...]]] = {
    "Account": {
        "cs": ("firma", "společnost", "zákazník", "odběratel", "dodavatel", "klient", "organizace"),
        "sk": (
            "firma",
            "spoločnosť",
            "zákazník",
            "odberateľ",
            "dodávateľ",
            "klient",
            "organizácia",
        ),
        "en": (
            "account",
            "company",
            "customer",
            "organisation",
            "organization",
            "client",
            "party",
            "supplier",
            "vendor",
        ),
    },
    "Contact": {
        "cs": ("kontakt", "kontaktní osoba", "osoba"),
        "sk": ("kontakt", "kontaktná osoba", "osoba"),
        "en": ("contact", "person", "contact person"),
    },
    "Opportunity": {
        "cs": ("obchod", "obchodní případ", "příležitost", "nabídka", "deal"),
        "sk": ("obchod", "obchodný prípad", "príležitosť", "ponuka"),
        "en": ("opportunity", "deal", "lead", "prospect deal"),
    },
    "Quote": {
        "cs": ("cenová nabídka", "kalkulace"),
        "sk": ("cenová ponuka", "kalkulácia"),
        "en": ("quote", "quotation", "offer"),
    },
    "Order": {
        "cs": ("zakázka", "objednávka", "prodejní objednávka"),
        "sk": ("zákazka", "objednávka", "predajná objednávka"),
        "en": ("order", "sales order", "sale", "purchase order"),
    },
    "Invoice": {
        "cs": ("faktura", "daňový doklad", "doklad", "vyúčtování"),
        "sk": ("faktúra", "daňový doklad", "doklad", "vyúčtovanie"),
        "en": ("invoice", "bill", "tax document"),
    },
    "Payment": {
        "cs": ("platba", "úhrada", "splátka"),
        "sk": ("platba", "úhrada", "splátka"),
        "en": ("payment", "remittance"),
    },
    "Product": {
        "cs": ("produkt", "výrobek", "zboží", "položka katalogu", "služba"),
        "sk": ("produkt", "výrobok", "tovar", "služba"),
        "en": ("product", "item", "article", "service", "sku"),
    },
    "Pricelist": {
        "cs": ("ceník",),
        "sk": ("cenník",),
        "en": ("pricelist", "price list"),
    },
    "Contract": {
        "cs": ("smlouva", "sla", "rámcová smlouva"),
        "sk": ("zmluva", "rámcová zmluva"),
        "en": ("contract", "sla", "service level agreement", "agreement"),
    },
    "Activity": {
        "cs": ("aktivita", "schůzka", "hovor", "poznámka"),
        "sk": ("aktivita", "stretnutie", "hovor", "poznámka"),
        "en": ("activity", "meeting", "call", "note"),
    },
    "Project": {
        "cs": ("projekt",),
        "sk": ("projekt",),
        "en": ("project", "engagement"),
    },
    "Milestone": {
        "cs": ("milník", "etapa"),
        "sk": ("míľnik", "etapa"),
        "en": ("milestone", "version", "phase"),
    },
    "Task": {
        "cs": ("úkol", "úloha", "požadavek"),
        "sk": ("úloha", "požiadavka"),
        "en": ("task", "issue ticket", "work item", "ticket"),
    },
    "Timesheet": {
        "cs": ("výkaz", "výkaz práce", "odpracované hodiny", "timesheet"),
        "sk": ("výkaz", "výkaz práce", "odpracované hodiny"),
        "en": ("timesheet", "time entry", "time log"),
    },
    "ResourceBooking": {
        "cs": ("rezervace kapacity", "alokace", "plánování zdrojů"),
        "sk": ("rezervácia kapacity", "alokácia", "plánovanie zdrojov"),
        "en": ("resource booking", "allocation", "booking"),
    },
    "Risk": {
        "cs": ("riziko", "problém"),
        "sk": ("riziko", "problém"),
        "en": ("risk", "issue"),
    },
    "ChangeRequest": {
        "cs": ("změnový požadavek", "změna", "vícepráce"),
        "sk": ("zmenová požiadavka", "zmena", "viacpráce"),
        "en": ("change request", "change order", "variation"),
    },
}

# field names people write in column headers -> canonical field (entity-independent)
FIELD_TERMS: dict[str, tuple[str, ...]] = {
    "name": ("název", "jméno firmy", "obchodní jméno", "názov", "meno", "name", "company name"),
    "ico": ("ičo", "ič", "ico", "company id", "registration number", "reg no"),
    "dic": ("dič", "ič dph", "dic", "vat id", "vat number", "tax id"),
    "email": ("e-mail", "email", "mail"),
    "phone": ("telefon", "telefón", "tel", "phone", "mobile"),
    "domain": ("web", "doména", "doména webu", "website", "domain"),
    "number": ("číslo", "číslo dokladu", "number", "no"),
    "variable_symbol": ("variabilní symbol", "variabilný symbol", "vs", "variable symbol"),
    "amount": ("částka", "suma", "amount", "value"),
    "currency": ("měna", "mena", "currency"),
    "due": ("splatnost", "datum splatnosti", "dátum splatnosti", "due date", "due"),
    "issued": ("datum vystavení", "dátum vystavenia", "vystaveno", "issue date", "issued"),
    "hours": ("hodiny", "hours", "spent hours"),
    "status": ("stav", "status", "state"),
}


def fold(term: str) -> str:
    """Lower-case without diacritics and surrounding space: ``Odběratel`` → ``odberatel``."""
    decomposed = unicodedata.normalize("NFKD", term.strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=1)
def _entity_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for entity, langs in ENTITY_TERMS.items():
        index[fold(entity)] = entity
        for terms in langs.values():
            for term in terms:
                index.setdefault(fold(term), entity)
    return index


@lru_cache(maxsize=1)
def _field_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for field, terms in FIELD_TERMS.items():
        index[fold(field)] = field
        for term in terms:
            index.setdefault(fold(term), field)
    return index


def lookup_entity(term: str) -> str | None:
    """The canonical entity a cs/sk/en word means, or None: ``faktúra`` → ``Invoice``."""
    return _entity_index().get(fold(term))


def lookup_field(term: str) -> str | None:
    """The canonical field a column header means, or None: ``IČ DPH`` → ``dic``."""
    return _field_index().get(fold(term))


def terms_for(entity: str, lang: str | None = None) -> list[str]:
    """Every word for an entity (one language or all), e.g. for search expansion."""
    langs = ENTITY_TERMS.get(entity, {})
    if lang is not None:
        return list(langs.get(lang, ()))
    seen: dict[str, None] = {}
    for terms in langs.values():
        for term in terms:
            seen.setdefault(term, None)
    return list(seen)
