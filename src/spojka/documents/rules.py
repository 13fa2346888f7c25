"""Template-free extraction from a printed invoice's layout (PDF text layer or OCR).

The rules know how Czech, Slovak, English and German invoices label things, and three ways a
value sits next to its label: in the same run of words ("Datum vystavení: 3. 2. 2025"), in the
next column of the same line, or right below the label. Party blocks are found under their
headings (Dodavatel / Odběratel, Supplier / Customer, Lieferant / Kunde …), the item table by
its header row, the VAT breakdown by rows that start with a rate.
Person-taught hints for a supplier add labels or fixed values before the generic rules run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from spojka.documents.layout import Layout, Line, Segment
from spojka.documents.models import FieldInfo, Invoice, InvoiceLine, Party, VatBreakdown
from spojka.documents.parsing import (
    count_currencies,
    currency_code,
    cz_account_to_iban,
    find_amounts,
    find_iban,
    find_rate,
    fold,
    fold_keep_length,
    parse_date,
    plain_rate,
)


def _labels(*patterns: str) -> list[re.Pattern[str]]:
    """Folded label patterns; a space matches any run of spaces, words stand alone."""
    return [
        re.compile(r"(?<![a-z0-9])" + p.replace(" ", r"\s*") + r"(?![a-z0-9])")
        for p in sorted(patterns, key=len, reverse=True)
    ]


FIELD_LABELS: dict[str, list[re.Pattern[str]]] = {
    "number": _labels(
        r"cislo faktury", r"faktura c\.?", r"faktura cislo", r"faktura - danovy doklad c\.?",
        r"danovy doklad c\.?", r"cislo dokladu", r"doklad c\.?", r"doklad cislo",
        r"evidencni cislo(?: dokladu)?",
        r"faktura\s+-?\s*danovy doklad", r"cislo faktury",
        r"invoice (?:no\.?|number|nr\.?|#)", r"tax invoice no\.?",
        r"rechnungs-?(?:nummer|nr\.?)", r"rechnung (?:nr\.?|nummer)", r"faktura c\.",
    ),
    "issue_date": _labels(
        r"datum vystaveni", r"datum vyhotoveni", r"vystaveno dne", r"datum vyhotovenia",
        r"datum vystavenia", r"vystaveno",
        r"vystavene", r"date of issue", r"issue date", r"invoice date", r"date issued",
        r"issued on", r"rechnungsdatum", r"ausstellungsdatum", r"datum der rechnung",
    ),
    "tax_point_date": _labels(
        r"datum uskutecneni zdanitelneho plneni", r"datum uskutecneni plneni",
        r"datum zdanitelneho plneni", r"datum zdan\. ?plneni", r"datum uskut\. ?zdan\. ?plneni",
        r"duzp", r"datum dodania(?: tovaru| sluzby)?",
        r"den dodania", r"datum dodani", r"tax point date", r"tax point", r"date of supply",
        r"supply date", r"delivery date", r"leistungsdatum", r"lieferdatum",
        r"liefer-?/leistungsdatum",
    ),
    "due_date": _labels(
        r"datum splatnosti", r"splatnost", r"splatne do", r"splatno dne", r"termin splatnosti",
        r"splatna do", r"due date",
        r"payment due(?: date| by| on)?", r"due on", r"due by", r"falligkeitsdatum",
        r"fallig am", r"fallig bis", r"fallig", r"zahlbar bis", r"zahlungsziel",
    ),
    "variable_symbol": _labels(
        r"variabilni symbol", r"variabilny symbol", r"var\. ?symbol", r"v\. ?s\.", r"vs",
        r"payment reference", r"zahlungsreferenz", r"verwendungszweck",
    ),
    "iban": _labels(r"iban"),
    "currency": _labels(r"mena", r"currency", r"wahrung"),
    "total_without_vat": _labels(
        r"celkem bez dph", r"zaklad dph celkem", r"celkova castka bez dph", r"celkom bez dph",
        r"spolu bez dph", r"suma bez dph", r"total (?:without|excl\.?|excluding|before) vat",
        r"subtotal", r"mezisoucet", r"zaklad dane celkem", r"zaklad dane", r"net total",
        r"total net", r"net amount", r"nettobetrag",
        r"summe netto", r"zwischensumme", r"gesamt netto", r"netto gesamt",
        r"gesamtbetrag netto", r"rechnungsbetrag netto",
    ),
    "total_vat": _labels(
        r"dph celkem", r"celkem dph", r"dph celkom", r"dph spolu", r"spolu dph",
        r"celkova dph", r"vyse dph", r"vyska dph", r"total vat", r"vat total", r"vat amount",
        r"total tax", r"^tax:?$", r"umsatzsteuer gesamt", r"mwst\.? gesamt", r"summe mwst\.?",
        r"summe ust\.?", r"ust\.? gesamt", r"gesamt mwst\.?", r"umsatzsteuer",
    ),
    "total_with_vat": _labels(
        r"celkem s dph", r"celkem vcetne dph", r"celkova castka s dph", r"celkom s dph",
        r"spolu s dph", r"suma s dph", r"celkova suma", r"total (?:with|incl\.?|including) vat",
        r"invoice total", r"grand total", r"total amount", r"gesamtbetrag brutto",
        r"gesamtbetrag", r"bruttobetrag", r"summe brutto", r"gesamt brutto", r"brutto gesamt",
        r"rechnungsbetrag brutto", r"rechnungsbetrag",
    ),
    "amount_due": _labels(
        r"celkem k uhrade", r"k uhrade", r"zbyva uhradit", r"k zaplaceni", r"na uhradu",
        r"zostava uhradit", r"suma na uhradu", r"amount due", r"balance due",
        r"amount payable", r"total due", r"total payable", r"please pay", r"zahlbetrag",
        r"zu zahlen", r"zahlungsbetrag", r"offener betrag", r"endbetrag",
    ),
}  # fmt: skip

# Bare document titles ("FAKTURA 2025/001", "Invoice INV-7"): only the text right after them
WEAK_NUMBER_LABELS = _labels(r"faktura", r"faktura", r"invoice", r"rechnung", r"danovy doklad")

PARTY_LABELS: dict[str, list[re.Pattern[str]]] = {
    "vat_id": _labels(
        r"ic dph", r"ic pro dph", r"vat id", r"vat no\.?", r"vat number", r"vat reg\.? no\.?",
        r"vat", r"ust-?idnr\.?", r"ust\.? ?-?id\.?(?: ?-?nr\.?)?", r"umsatzsteuer-?id(?:entifikationsnummer)?",  # noqa: E501
    ),
    "dic": _labels(r"dic", r"steuernummer", r"st\.? ?-?nr\.?", r"tax no\.?", r"tin"),
    "ico": _labels(
        r"ic[o0]", r"ic", r"company id", r"company no\.?", r"reg\.? no\.?",
        r"registration no\.?", r"business id", r"id no\.?", r"firmen-?nr\.?",
    ),
}  # fmt: skip

SUPPLIER_HEADERS = _labels(
    r"dodavatel", r"supplier", r"seller", r"vendor", r"lieferant", r"verkaufer",
    r"rechnungssteller", r"leistungserbringer", r"prodavajici", r"predavajuci",
    r"auftragnehmer", r"from",
)  # fmt: skip
CUSTOMER_HEADERS = _labels(
    r"odberatel", r"customer", r"buyer", r"bill to", r"billed to", r"invoice to", r"kunde",
    r"kaufer", r"rechnungsempfanger", r"leistungsempfanger", r"auftraggeber", r"kupujici",
    r"kupujuci", r"prijemce", r"to",
)  # fmt: skip

COLUMN_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("vat", re.compile(r"(?<![a-z])(sazba|sadzba|rate|satz|dph ?%|vat ?%|mwst|ust ?%|% ?dph|%)(?![a-z])")),  # noqa: E501
    ("price", re.compile(r"(cena za|jedn\.? ?cena|cena/|jednotkova|unit price|einzelpreis|preis/|price|e-?preis|cena mj|j\. ?cena)")),  # noqa: E501
    ("total", re.compile(r"(?<![a-z])(celkem|celkom|spolu|total|amount|gesamt|betrag|zaklad|suma)(?![a-z])")),  # noqa: E501
    ("qty", re.compile(r"(?<![a-z])(mnozstvi|mnozstvo|pocet|qty|quantity|menge|anzahl|mn\.)(?![a-z])")),  # noqa: E501
    ("unit", re.compile(r"(?<![a-z])(mj|m\.j\.|jednotka|unit|einheit|me|jedn\.)(?![a-z])")),
    ("desc", re.compile(r"(?<![a-z])(popis|polozka|nazev|oznacenie|description|item|bezeichnung|artikel|leistung|text|predmet|sluzba)(?![a-z])")),  # noqa: E501
]  # fmt: skip

COUNTRY_NAMES = {
    "ceska republika": "CZ", "czech republic": "CZ", "czechia": "CZ", "tschechien": "CZ",
    "slovensko": "SK", "slovenska republika": "SK", "slovakia": "SK", "slowakei": "SK",
    "germany": "DE", "deutschland": "DE", "nemecko": "DE", "austria": "AT",
    "osterreich": "AT", "rakousko": "AT", "polska": "PL", "poland": "PL",
}  # fmt: skip

_NOISE_LINE = re.compile(
    r"(?<![a-z])(tel|phone|telefon|e-?mail|www|web|fax|bank|banka|ucet|account|konto|iban|swift|bic|zapsan|zapisan|registered|spisova|handelsregister|amtsgericht|oddil|vlozka)(?![a-z])",
)
_NUMBER_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9/\-_.]*\d[A-Za-z0-9/\-_]*")


@dataclass(frozen=True)
class Hint:
    """One active per-supplier hint: a label the supplier uses, or a fixed value."""

    field: str
    kind: str  # "label" | "value"
    value: str
    version: int


# --- value parsers: text after a label → value or None ---------------------------------------


_OCR_DIGITS = str.maketrans("OolI|", "00111")


def _digits_ocr(text: str) -> str:
    return text.translate(_OCR_DIGITS)


def _parse_number(text: str) -> str | None:
    text = text.strip(" :#.-–")
    m = _NUMBER_TOKEN.search(text)
    if not m:
        return None
    token = m.group(0).rstrip(".")
    # dates are never invoice numbers
    if parse_date(token) is not None and re.fullmatch(r"[\d./-]+", token):
        return None
    return token


def _parse_vs(text: str) -> str | None:
    m = re.search(r"(?<![\w])(\d{1,10})(?![\w.,])", _digits_ocr(text.strip(" :")))
    return m.group(1) if m else None


def _parse_amount_value(text: str) -> Decimal | None:
    for value, _start, end in find_amounts(text):
        if text[end : end + 3].lstrip().startswith("%"):
            continue
        return value
    return None


def _parse_currency(text: str) -> str | None:
    m = re.search(r"[A-Za-zČč€$£]{1,3}", text)
    return currency_code(m.group(0)) if m else None


def _parse_iban(text: str) -> str | None:
    return find_iban(text)


def _parse_ico(text: str) -> str | None:
    m = re.search(r"(?<![\w])(\d[\d ]{5,9}\d)(?![\w])", _digits_ocr(text))
    if not m:
        return None
    digits = m.group(1).replace(" ", "")
    return digits if 6 <= len(digits) <= 8 else None


def _parse_dic(text: str) -> str | None:
    text = text.strip(" :")
    m = re.search(r"(?<![\w])((?:CZ|SK)?\s?\d{8,10})(?![\w])", text.upper())
    if m:
        return m.group(1).replace(" ", "")
    m = re.search(r"(?<![\w/])(\d{2,3}/\d{3}/\d{4,5})(?![\w/])", text)  # German Steuernummer
    return m.group(1) if m else None


def _parse_vat_id(text: str) -> str | None:
    m = re.search(r"(?<![\w])([A-Z]{2}\s?[0-9A-Z]{8,12})(?![\w])", text.upper().strip(" :"))
    if not m or not any(ch.isdigit() for ch in m.group(1)):
        return None
    return m.group(1).replace(" ", "")


PARSERS: dict[str, Callable[[str], Any]] = {
    "number": _parse_number,
    "issue_date": parse_date,
    "tax_point_date": parse_date,
    "due_date": parse_date,
    "variable_symbol": _parse_vs,
    "iban": _parse_iban,
    "currency": _parse_currency,
    "total_without_vat": _parse_amount_value,
    "total_vat": _parse_amount_value,
    "total_with_vat": _parse_amount_value,
    "amount_due": _parse_amount_value,
    "ico": _parse_ico,
    "dic": _parse_dic,
    "vat_id": _parse_vat_id,
}

_ALL_LABELS = [p for pats in FIELD_LABELS.values() for p in pats]


def _is_label(seg: Segment) -> bool:
    return any(p.search(seg.folded) for p in _ALL_LABELS) or any(
        p.match(seg.folded.strip()) for pats in PARTY_LABELS.values() for p in pats
    )


# --- the extractor ---------------------------------------------------------------------------


class _Reader:
    def __init__(self, layout: Layout, hints: Sequence[Hint]) -> None:
        self.layout = layout
        self.lines = layout.lines
        self.source = layout.source
        self.hints = list(hints)
        self.invoice = Invoice()
        self.index: dict[int, tuple[int, int]] = {}  # id(segment) → (line no, segment no)
        # each run of words belongs to the field whose label in it is longest, so that
        # "Základ DPH celkem" is a base and not "DPH celkem"
        self.owner: dict[int, str] = {}
        for li, line in enumerate(self.lines):
            table_header = _header_columns(line) is not None
            for si, seg in enumerate(line.segments):
                self.index[id(seg)] = (li, si)
                if table_header:
                    continue
                best = ("", 0)
                for name, patterns in FIELD_LABELS.items():
                    for pattern in patterns:
                        m = pattern.search(seg.folded)
                        if m and m.end() - m.start() > best[1]:
                            best = (name, m.end() - m.start())
                if best[1]:
                    self.owner[id(seg)] = best[0]

    # field info -----------------------------------------------------------------------------
    def info(self, seg: Segment | None, confidence: float, hint: Hint | None = None) -> FieldInfo:
        conf = confidence
        if seg is not None and self.source == "ocr":
            conf *= 0.6 + 0.4 * seg.conf
        return FieldInfo(
            source=self.source if hint is None else "rule",
            confidence=round(min(conf, 1.0), 3),
            page=seg.page if seg else None,
            bbox=seg.bbox if seg else None,
            hint_version=hint.version if hint else None,
        )

    def put(self, path: str, value: Any, info: FieldInfo) -> None:
        if value is not None and value != "":
            self.invoice.set(path, value, info)

    # label → value --------------------------------------------------------------------------
    def candidates(self, seg: Segment, end: int) -> Iterable[tuple[str, Segment, float]]:
        """Where a label's value may be: after it, in the next column, or below it."""
        rest = seg.text[end:]
        if rest.strip(" :.-#"):
            yield rest, seg, 0.92
        li, si = self.index[id(seg)]
        line = self.lines[li]
        if si + 1 < len(line.segments):
            right = line.segments[si + 1]
            if not _is_label(right):
                yield right.text, right, 0.88
        height = max(seg.height, 6.0)
        for below_line in self.lines[li + 1 : li + 4]:
            if below_line.page != seg.page or below_line.top - seg.bottom > 2.6 * height:
                break
            for below in below_line.segments:
                if below.x1 < seg.x0 - 4 or below.x0 > seg.x1 + 4:
                    continue
                if not _is_label(below):
                    yield below.text, below, 0.8
                break

    def find_field(
        self,
        field: str,
        patterns: Sequence[re.Pattern[str]],
        hint: Hint | None = None,
        *,
        same_segment: bool = False,
        owned: bool = True,
    ) -> tuple[Any, FieldInfo] | None:
        parser = PARSERS[field]
        for line in self.lines:
            for seg in line.segments:
                if owned and self.owner.get(id(seg)) != field:
                    continue
                for pattern in patterns:
                    m = pattern.search(seg.folded)
                    if not m:
                        continue
                    places = self.candidates(seg, m.end())
                    if same_segment:
                        places = [(seg.text[m.end() :], seg, 0.75)]
                    for text, where, conf in places:
                        value = parser(text)
                        if value is not None:
                            return value, self.info(where, conf, hint)
                    break
        return None

    # header fields --------------------------------------------------------------------------
    def header_fields(self) -> None:
        label_hints = {h.field: h for h in self.hints if h.kind == "label"}
        for field, patterns in FIELD_LABELS.items():
            found = None
            hint = label_hints.get(field)
            if hint is not None:
                taught = " ".join(re.escape(word) for word in hint.value.split())
                found = self.find_field(field, _labels(taught), hint, owned=False)
            if found is None:
                found = self.find_field(field, patterns)
            if found is None and field == "number":
                found = self.find_field(field, WEAK_NUMBER_LABELS, same_segment=True, owned=False)
            if found is not None:
                self.put(field, found[0], found[1])
        if self.invoice.iban is None:
            for line in self.lines:
                iban = find_iban(line.text)
                if iban:
                    self.put("iban", iban, self.info(line.segments[0], 0.75))
                    break
        if self.invoice.iban is None:
            # only a domestic account "19-2000145399/0800": its IBAN follows by rule
            for line in self.lines:
                if not _ACCOUNT_LABEL.search(fold(line.text)):
                    continue
                iban = cz_account_to_iban(line.text)
                if iban:
                    self.put(
                        "iban", iban, FieldInfo(source="rule", confidence=0.85, page=line.page)
                    )
                    break
        if self.invoice.currency is None:
            counts = count_currencies(self.layout.text)
            if counts:
                code = max(counts, key=lambda c: counts[c])
                self.put("currency", code, self.info(None, 0.85))

    # parties ----------------------------------------------------------------------------------
    def parties(self) -> None:
        headers: list[tuple[str, Segment, int]] = []
        for line in self.lines:
            for seg in line.segments:
                for role, pats in (("supplier", SUPPLIER_HEADERS), ("customer", CUSTOMER_HEADERS)):
                    m = next(
                        (p.match(seg.folded.strip()) for p in pats if p.match(seg.folded.strip())),
                        None,
                    )
                    if m and not any(r == role for r, _, _ in headers):
                        rest = seg.text.strip()[m.end() :].strip(" :")
                        # a heading is short: "Dodavatel:" or "Dodavatel: ACME s.r.o."
                        if len(fold(rest)) <= 60 and not _is_label_text(rest):
                            headers.append((role, seg, m.end()))
        for role, seg, end in headers:
            others = [s for r, s, _ in headers if r != role]
            self.party_block(role, seg, end, others)
        if not any(r == "supplier" for r, _, _ in headers):
            self.letterhead([s for _, s, _ in headers])

    def letterhead(self, others: list[Segment]) -> None:
        """No supplier heading: the supplier is the letterhead, the first block of text at the
        top of page one that is not the document title, a field or the customer's block."""
        for line in self.lines[:12]:
            if line.page != 1:
                break
            seg = line.segments[0]
            if any(o is seg for o in others) or any(
                abs(o.x0 - seg.x0) < 12 and seg.top > o.top for o in others
            ):
                continue
            if (
                _TITLE.match(seg.folded.strip())
                or _starts_header_field(seg)
                or _party_ids(seg.text)
                or not re.search(r"[^\W\d_]{2}", seg.text)
            ):
                continue
            # the name opens the block; the rest follows below in the same column
            self.party_block("supplier", seg, 0, others, confidence=0.75)
            return

    def party_block(
        self,
        role: str,
        head: Segment,
        end: int,
        others: list[Segment],
        *,
        confidence: float = 0.85,
    ) -> None:
        li, _ = self.index[id(head)]
        block: list[Segment] = []
        inline = head.text.strip()[end:].strip(" :")
        last_bottom = head.bottom
        height = max(head.height, 6.0)
        right_limit = min((o.x0 for o in others if o.x0 > head.x0 + 20), default=10_000.0)
        for line in self.lines[li + 1 :]:
            if line.page != head.page or line.top - last_bottom > 2.2 * height:
                break
            segs = [
                s
                for s in line.segments
                if head.x0 - 12 <= s.x0 < right_limit - 4 and s.x0 < head.x0 + 120
            ]
            if not segs:
                continue
            if any(o in line.segments and abs(o.x0 - head.x0) < 12 for o in others):
                break
            seg = segs[0]
            if _starts_header_field(seg):
                break
            block.append(seg)
            last_bottom = line.bottom
        prefix = role
        party = Party()
        infos: dict[str, FieldInfo] = {}
        text_lines: list[Segment] = []
        for seg in block:
            ids = _party_ids(seg.text)
            if ids:
                for key, value in ids.items():
                    if getattr(party, key) is None:
                        setattr(party, key, value)
                        infos[key] = self.info(seg, 0.9)
                continue
            if _NOISE_LINE.search(seg.folded):
                continue
            text_lines.append(seg)
        name_seg: Segment | None = head if inline else None
        if inline:
            party.name = inline
            infos["name"] = self.info(head, confidence)
        elif text_lines:
            name_seg = text_lines.pop(0)
            party.name = name_seg.text.strip()
            infos["name"] = self.info(name_seg, 0.85)
        address: list[str] = []
        first_addr: Segment | None = None
        for seg in text_lines:
            country = COUNTRY_NAMES.get(fold(seg.text).strip(" ,."))
            if country:
                party.country = country
                infos["country"] = self.info(seg, 0.85)
                continue
            address.append(seg.text.strip().strip(","))
            first_addr = first_addr or seg
        if address:
            party.address = ", ".join(address)
            infos["address"] = self.info(first_addr, 0.8)
        _derive_tax_ids(party, infos, self.info(None, 0.9))
        for key, info in infos.items():
            self.put(f"{prefix}.{key}", getattr(party, key), info)

    # item table -------------------------------------------------------------------------------
    def items(self) -> tuple[int, int] | None:
        for li, line in enumerate(self.lines):
            columns = _header_columns(line)
            if columns is None:
                continue
            rows: list[InvoiceLine] = []
            last = li
            first_seg: Segment | None = None
            for lj in range(li + 1, len(self.lines)):
                row = self.lines[lj]
                if row.page != line.page and rows:
                    pass
                if _ends_table(row):
                    break
                if row.top - self.lines[lj - 1].bottom > 3.5 * max(row.bottom - row.top, 6.0):
                    break
                cells = _assign(row, columns)
                item = _item_from_cells(cells)
                if item is None:
                    if rows and set(cells) == {"desc"}:
                        rows[
                            -1
                        ].description = f"{rows[-1].description or ''} {cells['desc']}".strip()
                        last = lj
                        continue
                    if rows:
                        break
                    continue
                rows.append(item)
                first_seg = first_seg or row.segments[0]
                last = lj
            if rows:
                info = self.info(first_seg, 0.85)
                if self.source == "ocr" and _repair_ocr_lines(rows):
                    info = FieldInfo(source="rule", confidence=0.6, page=info.page, bbox=info.bbox)
                self.put("lines", rows, info)
                return li, last
        return None

    # VAT breakdown ------------------------------------------------------------------------------
    def breakdown(self, skip: tuple[int, int] | None) -> None:
        rows: list[VatBreakdown] = []
        first: Segment | None = None
        for li, line in enumerate(self.lines):
            if skip and skip[0] <= li <= skip[1]:
                continue
            head = line.segments[0]
            rate = find_rate(head.text)
            if rate is None or len(fold(re.sub(r"[\d.,%\s]", "", head.text))) > 12:
                continue
            amounts = [
                a
                for seg in line.segments[1:]
                for a in [_parse_amount_value(seg.text)]
                if a is not None and "%" not in seg.text
            ]
            if len(amounts) >= 2 and rate <= 30:
                rows.append(VatBreakdown(rate=rate, base=amounts[0], tax=amounts[1]))
                first = first or head
        if rows:
            self.put("vat_breakdown", rows, self.info(first, 0.85))
            return
        self.derive_breakdown()

    def derive_breakdown(self) -> None:
        """No printed breakdown: sum the lines per rate (a rule, lower confidence)."""
        inv = self.invoice
        if not inv.lines or any(ln.vat_rate is None or ln.total is None for ln in inv.lines):
            return
        bases: dict[Decimal, Decimal] = defaultdict(Decimal)
        for ln in inv.lines:
            assert ln.vat_rate is not None and ln.total is not None
            bases[ln.vat_rate] += ln.total
        rows = [
            VatBreakdown(rate=r, base=b, tax=(b * r / 100).quantize(Decimal("0.01"), ROUND_HALF_UP))
            for r, b in sorted(bases.items(), reverse=True)
        ]
        self.put("vat_breakdown", rows, FieldInfo(source="rule", confidence=0.6))

    # learned fixed values -----------------------------------------------------------------------
    def apply_value_hints(self) -> None:
        for hint in self.hints:
            if hint.kind != "value":
                continue
            value: Any = hint.value
            if hint.field.endswith("_date"):
                value = date.fromisoformat(hint.value)
            self.put(
                hint.field,
                value,
                FieldInfo(source="person", confidence=0.9, hint_version=hint.version),
            )

    def run(self) -> Invoice:
        self.header_fields()
        self.parties()
        span = self.items()
        self.breakdown(span)
        self.apply_value_hints()
        _cross_check(self.invoice)
        return self.invoice


def _is_label_text(text: str) -> bool:
    folded = fold(text)
    return any(p.search(folded) for p in _ALL_LABELS)


def _starts_header_field(seg: Segment) -> bool:
    head = seg.folded.strip()[:40]
    return any(p.match(head) for pats in FIELD_LABELS.values() for p in pats)


def _party_ids(text: str) -> dict[str, str]:
    """IČO / DIČ / VAT id from one line, also several on one line ("IČO: 1 DIČ: CZ1")."""
    fold_line = fold_keep_length(text)
    hits: list[tuple[int, int, str]] = []
    for key, pats in PARTY_LABELS.items():
        for p in pats:
            for m in p.finditer(fold_line):
                if not any(s <= m.start() < e for s, e, _ in hits):
                    hits.append((m.start(), m.end(), key))
    hits.sort()
    found: dict[str, str] = {}
    for i, (_start, end, key) in enumerate(hits):
        stop = hits[i + 1][0] if i + 1 < len(hits) else len(text)
        value = PARSERS[key](text[end:stop])
        if value is not None and key not in found:
            found[key] = value
    return found


def _derive_tax_ids(party: Party, infos: dict[str, FieldInfo], info: FieldInfo) -> None:
    """By law a Czech DIČ is the VAT id; a Slovak IČ DPH is SK + DIČ."""
    derived = FieldInfo(source="rule", confidence=info.confidence)
    if party.dic and party.dic[:2] == "SK" and party.dic[2:].isdigit():
        # "DIČ: SK…" on a Czech invoice is the Slovak IČ DPH; the DIČ is its digits
        party.vat_id = party.vat_id or party.dic
        infos.setdefault("vat_id", infos.get("dic", derived))
        party.dic = party.dic[2:]
        infos["dic"] = derived
    if party.dic and party.dic[:2] == "CZ" and party.vat_id is None:
        party.vat_id = party.dic
        infos["vat_id"] = derived
    elif party.vat_id and party.vat_id[:2] == "CZ" and party.dic is None:
        party.dic = party.vat_id
        infos["dic"] = derived
    elif (
        party.vat_id
        and party.vat_id[:2] == "SK"
        and party.dic is None
        and party.vat_id[2:].isdigit()
    ):
        party.dic = party.vat_id[2:]
        infos["dic"] = derived
    elif party.dic and party.dic.isdigit() and len(party.dic) == 10 and party.vat_id is None:
        pass  # a Slovak DIČ alone does not make its holder a VAT payer


def _header_columns(line: Line) -> list[tuple[str, float, float]] | None:
    if len(line.segments) < 3:
        return None
    columns: list[tuple[str, float, float]] = []
    for seg in line.segments:
        kind = next((k for k, p in COLUMN_WORDS if p.search(seg.folded)), None) or _fuzzy_column(
            seg.folded
        )
        if kind is None or any(k == kind for k, _, _ in columns):
            # a heading the rules do not know (or OCR misread) still owns its column
            columns.append(("other", seg.x0, seg.x1))
            continue
        columns.append((kind, seg.x0, seg.x1))
    kinds = {k for k, _, _ in columns} - {"other"}
    if "desc" in kinds and "total" in kinds and len(kinds) >= 3 and len(kinds) >= len(columns) - 1:
        return columns
    return None


_COLUMN_VOCABULARY = {
    "qty": ("mnozstvi", "mnozstvo", "quantity", "menge", "anzahl", "pocet"),
    "price": ("einzelpreis", "unit price", "jedn. cena", "cena za mj"),
    "desc": ("description", "popis", "polozka", "bezeichnung", "oznacenie", "nazev", "artikel"),
    "total": ("celkem", "celkom", "amount", "betrag", "gesamt", "spolu"),
    "unit": ("jednotka", "einheit", "unit"),
}


def _fuzzy_column(folded: str) -> str | None:
    """A misread heading ("Ouantity", "Mnozstvl") still names its column."""
    from rapidfuzz import fuzz

    text = folded.strip(" :.")
    if len(text) < 4:
        return None
    best = max(
        (
            (fuzz.ratio(text, word), kind)
            for kind, words in _COLUMN_VOCABULARY.items()
            for word in words
        ),
        default=(0.0, None),
    )
    return best[1] if best[0] >= 80 else None


def _repair_ocr_lines(lines: list[InvoiceLine]) -> bool:
    """OCR drops digits and decimal marks; when a line's own numbers show which one is wrong
    (quantity × unit price ≠ total, and total ÷ the other gives a value with at most two
    decimals), derive it. Returns whether anything was derived."""
    repaired = False
    cent = Decimal("0.01")
    for ln in lines:
        if ln.total is None or ln.unit_price in (None, 0):
            continue
        assert ln.unit_price is not None
        if ln.quantity is not None and abs(ln.quantity * ln.unit_price - ln.total) <= cent:
            continue
        quantity = (ln.total / ln.unit_price).quantize(cent)
        if quantity > 0 and abs(quantity * ln.unit_price - ln.total) <= cent:
            ln.quantity = plain_rate(quantity)
            repaired = True
        elif ln.quantity:
            price = (ln.total / ln.quantity).quantize(cent)
            if abs(price * ln.quantity - ln.total) <= cent:
                ln.unit_price = price
                repaired = True
    return repaired


def _assign(row: Line, columns: list[tuple[str, float, float]]) -> dict[str, str]:
    cells: dict[str, list[str]] = defaultdict(list)
    for seg in row.segments:
        best, best_score = None, -1e9
        for kind, x0, x1 in columns:
            overlap = min(seg.x1, x1) - max(seg.x0, x0)
            score = overlap if overlap > 0 else -abs((seg.x0 + seg.x1) / 2 - (x0 + x1) / 2)
            if score > best_score:
                best, best_score = kind, score
        assert best is not None
        cells[best].append(seg.text)
    return {k: " ".join(v) for k, v in cells.items()}


def _item_from_cells(cells: dict[str, str]) -> InvoiceLine | None:
    total = _parse_amount_value(cells.get("total", ""))
    if total is None or not re.search(r"[^\W\d_]{2}", cells.get("desc", "")):
        return None
    qty_text = cells.get("qty", "")
    quantity = None
    unit = cells.get("unit", "").strip() or None
    m = re.match(r"\s*([-\d.,\s]*\d)\s*([^\d\s].*)?$", qty_text)
    if m:
        amounts = find_amounts(m.group(1))
        quantity = amounts[0][0] if amounts else None
        if m.group(2) and unit is None:
            unit = m.group(2).strip()
    rate_text = cells.get("vat", "")
    rate = find_rate(rate_text)
    if rate is None and rate_text.strip():
        value = _parse_amount_value(rate_text)
        rate = plain_rate(value) if value is not None and value <= 30 else None
    return InvoiceLine(
        description=cells["desc"].strip(),
        quantity=quantity,
        unit=unit,
        unit_price=_parse_amount_value(cells.get("price", "")),
        vat_rate=rate,
        total=total,
    )


_TABLE_END = re.compile(
    r"(?<![a-z])(celkem|celkom|spolu|total|subtotal|summe|gesamt|zwischensumme|rekapitulace|rekapitulacia|zaklad|sazba|sadzba|vat summary|k uhrade|netto|umsatzsteuer|satz|rate)"  # noqa: E501
)


_ACCOUNT_LABEL = re.compile(r"(cislo uctu|bankovni ucet|ucet|bank account|account no|konto)")
_TITLE = re.compile(
    r"(faktura|invoice|tax invoice|rechnung|danovy doklad|proforma|dobropis|credit note"
    r"|gutschrift)"
)
_TOTAL_FIELDS = ("total_without_vat", "total_vat", "total_with_vat", "amount_due")


def _ends_table(line: Line) -> bool:
    """A totals label anywhere on the line, or a summary heading at its start, ends the table."""
    if _TABLE_END.match(line.segments[0].folded.strip()):
        return True
    return any(
        p.search(seg.folded)
        for seg in line.segments
        for f in _TOTAL_FIELDS
        for p in FIELD_LABELS[f]
    )


def _cross_check(inv: Invoice) -> None:
    """Totals that add up confirm each other: raise their confidence."""
    a, b, c = inv.total_without_vat, inv.total_vat, inv.total_with_vat
    if a is not None and b is not None and c is not None and abs(a + b - c) <= Decimal("0.01"):
        for key in ("total_without_vat", "total_vat", "total_with_vat"):
            info = inv.fields[key]
            inv.fields[key] = info.model_copy(update={"confidence": max(info.confidence, 0.97)})
    # the only gap rules may fill: amount due equals the total when nothing else is printed
    # is NOT assumed — an unknown amount due stays None.


def extract_from_layout(layout: Layout, hints: Sequence[Hint] = ()) -> Invoice:
    """Canonical invoice from a page layout; fields nobody states stay None."""
    return _Reader(layout, hints).run()


def learn_label(layout: Layout, field: str, value: Any) -> str | None:
    """The label a document uses for a corrected value: text before it in its run of words,
    the run to its left, or the run above. None when the value is not printed."""
    parser = PARSERS.get(field)
    if parser is None:
        return None
    lines = layout.lines
    for li, line in enumerate(lines):
        for si, seg in enumerate(line.segments):
            if parser(seg.text) != value:
                continue
            # the label is what precedes the value inside the segment …
            cut = max(c for c in range(len(seg.text)) if parser(seg.text[c:]) == value)
            label = fold(seg.text[:cut]).strip(" :#.-")
            if len(re.sub(r"[^a-z]", "", label)) >= 2:
                return label
            # … or the segment to its left, or the one above
            if si > 0:
                label = fold(line.segments[si - 1].text).strip(" :#.-")
                if len(re.sub(r"[^a-z]", "", label)) >= 2:
                    return label
            for above in reversed(lines[max(0, li - 2) : li]):
                for cand in above.segments:
                    if cand.x1 >= seg.x0 - 4 and cand.x0 <= seg.x1 + 4:
                        label = fold(cand.text).strip(" :#.-")
                        if len(re.sub(r"[^a-z]", "", label)) >= 2:
                            return label
    return None
