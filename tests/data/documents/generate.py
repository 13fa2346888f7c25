"""Generates a labelled set of supplier invoices: ISDOC, UBL, Factur-X (CII in PDF), text PDFs
in several layouts in cs/sk/en/de, and scans (rendered, rotated, noisy images).

    python tests/data/documents/generate.py OUT_DIR [--split dev|heldout] [--count N]

Every document comes with ``<name>.expected.json`` (the canonical fields it states). The
``heldout`` split uses other seeds and two layouts that ``dev`` never uses, so rules tuned on
``dev`` are measured on documents they have not seen. Nothing binary is committed: tests and
benchmarks generate into a temporary folder.
"""

# ruff: noqa: E501  (XML templates and layout tables read better unwrapped)
from __future__ import annotations

import argparse
import io
import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from stdnum import iban as stdnum_iban
from stdnum.cz import dic as cz_dic
from stdnum.de import vat as de_vat
from stdnum.sk import dph as sk_dph

CENT = Decimal("0.01")

# --- companies -----------------------------------------------------------------------------


@dataclass
class Company:
    name: str
    street: str
    zip: str
    city: str
    country: str
    ico: str | None = None
    dic: str | None = None
    vat_id: str | None = None

    @property
    def address(self) -> str:
        return f"{self.street}, {self.zip} {self.city}"

    def expected(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ico": self.ico,
            "dic": self.dic,
            "vat_id": self.vat_id,
            "address": self.address,
        }


def _ico(rng: random.Random) -> str:
    while True:
        candidate = f"{rng.randint(1, 9)}{rng.randint(0, 999999):06d}"
        for last in "0123456789":
            if cz_dic.is_valid(candidate + last):
                return candidate + last


def _sk_dic(rng: random.Random) -> str:
    while True:
        n = f"{rng.randint(1, 9)}0{rng.choice('234789')}{rng.randint(0, 9999999):07d}"
        if sk_dph.is_valid("SK" + n):
            return n


def _de_vat(rng: random.Random) -> str:
    while True:
        n = f"DE{rng.randint(100000000, 999999999)}"
        if de_vat.is_valid(n):
            return n


def _iban(rng: random.Random, country: str) -> str:
    if country == "DE":
        bban = f"{rng.randint(10000000, 99999999)}{rng.randint(0, 9999999999):010d}"
    else:
        bank = rng.choice(["0100", "0300", "0800", "2010", "5500", "0900", "1100", "0200"])
        bban = f"{bank}{rng.randint(0, 999999):06d}{rng.randint(1, 9999999999):010d}"
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(digits) % 97
    value = f"{country}{check:02d}{bban}"
    assert stdnum_iban.is_valid(value)
    return value


CZ_NAMES = [
    "Stavební huť Řepová s.r.o.", "Účetní kancelář Šťastná s.r.o.", "Kovovýroba Žďár a.s.",
    "Tiskárna Čechová & syn s.r.o.", "Dřevo Příbram s.r.o.", "Elektro Ševčík s.r.o.",
    "Zahradnictví Růžička a.s.", "Softwarové studio Ořech s.r.o.", "Pekárna U Jiřího s.r.o.",
    "Nábytek Hořice s.r.o.", "Čistírna Bělá v.o.s.", "Transport Ústí s.r.o.",
]  # fmt: skip
SK_NAMES = [
    "Stavebniny Ďurčo s.r.o.", "Tlačiareň Žilina a.s.", "Účtovníctvo Šťastný s.r.o.",
    "Kovo Ľubochňa s.r.o.", "Pekáreň Hviezdoslav s.r.o.", "Dopravné služby Košice a.s.",
    "IT riešenia Poprad s.r.o.",
]  # fmt: skip
DE_NAMES = [
    "Müller Maschinenbau GmbH", "Schröder Büroservice GmbH", "Weiß & Söhne KG",
    "Bäckerei Großmann GmbH", "Hoffmann Logistik AG", "Kühn Elektrotechnik GmbH",
]  # fmt: skip
CZ_STREETS = ["Na Příkopě", "Dlouhá", "Husova", "Žitná", "Čáslavská", "Mánesova", "Lidická"]
SK_STREETS = ["Štúrova", "Hlavná", "Obchodná", "Mýtna", "Záhradnícka", "Ružová dolina"]
DE_STREETS = ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Lindenallee"]
CZ_CITIES = [("110 00", "Praha 1"), ("602 00", "Brno"), ("370 01", "České Budějovice"),
             ("460 01", "Liberec"), ("301 00", "Plzeň"), ("702 00", "Ostrava")]  # fmt: skip
SK_CITIES = [("811 01", "Bratislava"), ("040 01", "Košice"), ("010 01", "Žilina"),
             ("974 01", "Banská Bystrica"), ("080 01", "Prešov")]  # fmt: skip
DE_CITIES = [("10115", "Berlin"), ("80331", "München"), ("01067", "Dresden"), ("50667", "Köln")]


def company(rng: random.Random, country: str, names: list[str] | None = None) -> Company:
    if country == "CZ":
        zip_, city = rng.choice(CZ_CITIES)
        ico = _ico(rng)
        return Company(
            rng.choice(names or CZ_NAMES), f"{rng.choice(CZ_STREETS)} {rng.randint(1, 250)}",
            zip_, city, "CZ", ico=ico, dic=f"CZ{ico}", vat_id=f"CZ{ico}",
        )  # fmt: skip
    if country == "SK":
        zip_, city = rng.choice(SK_CITIES)
        dic = _sk_dic(rng)
        return Company(
            rng.choice(names or SK_NAMES), f"{rng.choice(SK_STREETS)} {rng.randint(1, 90)}",
            zip_, city, "SK", ico=_ico(rng), dic=dic, vat_id=f"SK{dic}",
        )  # fmt: skip
    zip_, city = rng.choice(DE_CITIES)
    return Company(
        rng.choice(names or DE_NAMES), f"{rng.choice(DE_STREETS)} {rng.randint(1, 120)}",
        zip_, city, "DE", vat_id=_de_vat(rng),
    )  # fmt: skip


ITEMS = {
    "cs": [("Konzultace – analýza procesů", "hod"), ("Montáž rozvaděče", "ks"),
           ("Kancelářský papír A4", "bal"), ("Přeprava materiálu", "km"),
           ("Servisní práce technika", "hod"), ("Licence účetního softwaru", "ks"),
           ("Dřevěné palety EUR", "ks"), ("Čištění vzduchotechniky", "m2")],
    "sk": [("Konzultácia – účtovníctvo", "hod"), ("Montáž osvetlenia", "ks"),
           ("Kancelársky papier A4", "bal"), ("Doprava tovaru", "km"),
           ("Servisné práce", "hod"), ("Údržba zelene", "m2")],
    "en": [("Consulting services", "h"), ("Installation of equipment", "pcs"),
           ("Office supplies", "pcs"), ("Freight transport", "km"),
           ("Software licence", "pcs"), ("Maintenance work", "h")],
    "de": [("Beratungsleistung", "Std"), ("Montage Schaltschrank", "Stk"),
           ("Büromaterial", "Stk"), ("Transportkosten", "km"), ("Wartungsarbeiten", "Std")],
}  # fmt: skip


def _rates(country: str, when: date) -> list[int]:
    if country == "CZ":
        return [21, 12] if when >= date(2024, 1, 1) else [21, 15, 10]
    if country == "SK":
        return [23, 19, 5] if when >= date(2025, 1, 1) else [20, 10]
    return [19, 7]


@dataclass
class Doc:
    lang: str
    supplier: Company
    customer: Company
    number: str
    issue: date
    tax_point: date
    due: date
    currency: str
    vs: str | None
    iban: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    total_without: Decimal = Decimal(0)
    total_vat: Decimal = Decimal(0)
    total_with: Decimal = Decimal(0)
    amount_due: Decimal = Decimal(0)
    words: dict[str, Any] | None = None  # label words to print instead of WORDS[lang]

    def expected(self) -> dict[str, Any]:
        def num(d: Decimal) -> float | int:
            return int(d) if d == d.to_integral_value() else float(d)

        return {
            "number": self.number,
            "issue_date": self.issue.isoformat(),
            "tax_point_date": self.tax_point.isoformat(),
            "due_date": self.due.isoformat(),
            "currency": self.currency,
            "variable_symbol": self.vs,
            "iban": self.iban,
            "supplier": self.supplier.expected(),
            "customer": self.customer.expected(),
            "lines": [
                {k: (num(v) if isinstance(v, Decimal) else v) for k, v in ln.items()}
                for ln in self.lines
            ],
            "vat_breakdown": [{k: num(v) for k, v in row.items()} for row in self.breakdown],
            "total_without_vat": num(self.total_without),
            "total_vat": num(self.total_vat),
            "total_with_vat": num(self.total_with),
            "amount_due": num(self.amount_due),
        }


def make_doc(rng: random.Random, lang: str) -> Doc:
    country = {"cs": "CZ", "sk": "SK", "de": "DE"}.get(lang) or rng.choice(["CZ", "SK"])
    supplier = company(rng, country)
    customer = company(rng, rng.choice(["CZ", "CZ", "SK"]) if country != "DE" else "CZ")
    while customer.name == supplier.name:
        customer = company(rng, customer.country)
    issue = date(2023, 6, 1) + timedelta(days=rng.randint(0, 880))
    tax_point = issue - timedelta(days=rng.randint(0, 5))
    due = issue + timedelta(days=rng.choice([7, 14, 14, 30, 60]))
    currency = "CZK" if country == "CZ" and rng.random() < 0.8 else "EUR"
    year = issue.year
    style = rng.randint(0, 3)
    seq = rng.randint(1, 9999)
    number = [
        f"FV{year}-{seq:04d}",
        f"{year}{seq:06d}",
        f"INV-{year}-{seq:04d}",
        f"{seq:05d}/{year % 100}",
    ][style]
    digits = "".join(ch for ch in number if ch.isdigit())[-10:]
    vs = digits if (lang in ("cs", "sk") or rng.random() < 0.5) else None
    doc = Doc(lang, supplier, customer, number, issue, tax_point, due, currency, vs,
              _iban(rng, country))  # fmt: skip
    rates = _rates(country, tax_point)
    for desc, unit in rng.sample(ITEMS[lang], rng.randint(1, 4)):
        qty = (
            Decimal(rng.choice([1, 2, 3, 5, 8, 10, 12, 24]))
            if unit not in ("hod", "h", "Std", "km", "m2")
            else Decimal(rng.randint(5, 400)) / Decimal(2 if rng.random() < 0.3 else 1)
        )
        price = (Decimal(rng.randint(150, 250000)) / 100).quantize(CENT)
        if currency == "EUR":
            price = (price / 20).quantize(CENT)
        rate = rng.choice(rates[:2])
        total = (qty * price).quantize(CENT, ROUND_HALF_UP)
        doc.lines.append({"description": desc, "quantity": qty, "unit": unit,
                          "unit_price": price, "vat_rate": Decimal(rate), "total": total})  # fmt: skip
    by_rate: dict[Decimal, Decimal] = {}
    for ln in doc.lines:
        by_rate[ln["vat_rate"]] = by_rate.get(ln["vat_rate"], Decimal(0)) + ln["total"]
    for rate, base in sorted(by_rate.items(), reverse=True):
        tax = (base * rate / 100).quantize(CENT, ROUND_HALF_UP)
        doc.breakdown.append({"rate": rate, "base": base, "tax": tax})
    doc.total_without = sum((r["base"] for r in doc.breakdown), Decimal(0))
    doc.total_vat = sum((r["tax"] for r in doc.breakdown), Decimal(0))
    doc.total_with = doc.total_without + doc.total_vat
    doc.amount_due = doc.total_with
    return doc


def invoice_for_order(
    supplier: Company, number: str, lines: list[tuple[str, int, str]], rate: int = 21
) -> Doc:
    """An invoice in CZK from ``supplier`` for ``lines`` (description, quantity, unit price) at
    one VAT rate, issued today: what the AP flow tests and benchmark match to a purchase order.
    The customer and the IBAN follow from ``number``."""
    rng = random.Random(number)
    customer = company(rng, "CZ")
    today = date.today()
    doc = Doc(
        "cs", supplier, customer, number, today, today, today + timedelta(days=14), "CZK",
        "".join(ch for ch in number if ch.isdigit())[-10:], _iban(rng, "CZ"),
    )  # fmt: skip
    for name, quantity, price in lines:
        qty, unit_price = Decimal(quantity), Decimal(price)
        doc.lines.append({"description": name, "quantity": qty, "unit": "ks",
                          "unit_price": unit_price, "vat_rate": Decimal(rate),
                          "total": (qty * unit_price).quantize(CENT)})  # fmt: skip
    base = sum((ln["total"] for ln in doc.lines), Decimal(0))
    tax = (base * rate / 100).quantize(CENT, ROUND_HALF_UP)
    doc.breakdown.append({"rate": Decimal(rate), "base": base, "tax": tax})
    doc.total_without, doc.total_vat = base, tax
    doc.total_with = doc.amount_due = base + tax
    return doc


# --- XML writers -----------------------------------------------------------------------------


def _x(value: Any) -> str:
    return escape(str(value))


def isdoc_xml(doc: Doc, *, version5: bool = False) -> bytes:
    ns = "http://isdoc.cz/namespace/invoice" if version5 else "http://isdoc.cz/namespace/2013"
    ver = "5.2" if version5 else "6.0.2"
    local = doc.currency == "CZK"
    c = "" if local else "Curr"

    def party(p: Company) -> str:
        street, _, number = p.street.rpartition(" ")
        taxes = ""
        if p.country == "SK" and p.dic:
            taxes += f"<PartyTaxScheme><CompanyID>{p.dic}</CompanyID><TaxScheme>TIN</TaxScheme></PartyTaxScheme>"
        if p.vat_id:
            taxes += f"<PartyTaxScheme><CompanyID>{p.vat_id}</CompanyID><TaxScheme>VAT</TaxScheme></PartyTaxScheme>"
        return (
            f"<Party><PartyIdentification><ID>{_x(p.ico or '')}</ID></PartyIdentification>"
            f"<PartyName><Name>{_x(p.name)}</Name></PartyName>"
            f"<PostalAddress><StreetName>{_x(street)}</StreetName><BuildingNumber>{number}</BuildingNumber>"
            f"<CityName>{_x(p.city)}</CityName><PostalZone>{p.zip}</PostalZone>"
            f"<Country><IdentificationCode>{p.country}</IdentificationCode><Name/></Country></PostalAddress>"
            f"{taxes}</Party>"
        )

    lines = "".join(
        f'<InvoiceLine><ID>{i}</ID><InvoicedQuantity unitCode="{_x(ln["unit"])}">{ln["quantity"]}</InvoicedQuantity>'
        f"<LineExtensionAmount{c}>{ln['total']}</LineExtensionAmount{c}>"
        f"<LineExtensionAmountTaxInclusive>{(ln['total'] * (1 + ln['vat_rate'] / 100)).quantize(CENT)}</LineExtensionAmountTaxInclusive>"
        f"<LineExtensionTaxAmount>{(ln['total'] * ln['vat_rate'] / 100).quantize(CENT)}</LineExtensionTaxAmount>"
        + (f"<UnitPrice>{ln['unit_price']}</UnitPrice>" if local else "")
        + f"<ClassifiedTaxCategory><Percent>{ln['vat_rate']}</Percent><VATCalculationMethod>0</VATCalculationMethod></ClassifiedTaxCategory>"
        f"<Item><Description>{_x(ln['description'])}</Description></Item></InvoiceLine>"
        for i, ln in enumerate(doc.lines, 1)
    )
    subs = "".join(
        f"<TaxSubTotal><TaxableAmount{c}>{r['base']}</TaxableAmount{c}><TaxAmount{c}>{r['tax']}</TaxAmount{c}>"
        f"<TaxInclusiveAmount{c}>{r['base'] + r['tax']}</TaxInclusiveAmount{c}>"
        f"<TaxCategory><Percent>{r['rate']}</Percent></TaxCategory></TaxSubTotal>"
        for r in doc.breakdown
    )
    currency = (
        f"<LocalCurrencyCode>{doc.currency}</LocalCurrencyCode>"
        if local
        else (
            f"<LocalCurrencyCode>CZK</LocalCurrencyCode><ForeignCurrencyCode>{doc.currency}</ForeignCurrencyCode>"
        )
    )
    vs = f"<VariableSymbol>{doc.vs}</VariableSymbol>" if doc.vs else ""
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="{ns}" version="{ver}">'
        f"<DocumentType>1</DocumentType><ID>{_x(doc.number)}</ID><UUID>00000000-0000-0000-0000-000000000000</UUID>"
        f"<IssueDate>{doc.issue}</IssueDate><TaxPointDate>{doc.tax_point}</TaxPointDate>"
        f"<VATApplicable>true</VATApplicable>{currency}<CurrRate>1</CurrRate><RefCurrRate>1</RefCurrRate>"
        f"<AccountingSupplierParty>{party(doc.supplier)}</AccountingSupplierParty>"
        f"<AccountingCustomerParty>{party(doc.customer)}</AccountingCustomerParty>"
        f"<InvoiceLines>{lines}</InvoiceLines>"
        f"<TaxTotal>{subs}<TaxAmount{c}>{doc.total_vat}</TaxAmount{c}></TaxTotal>"
        f"<LegalMonetaryTotal><TaxExclusiveAmount{c}>{doc.total_without}</TaxExclusiveAmount{c}>"
        f"<TaxInclusiveAmount{c}>{doc.total_with}</TaxInclusiveAmount{c}>"
        f"<AlreadyClaimedTaxExclusiveAmount>0</AlreadyClaimedTaxExclusiveAmount>"
        f"<PayableRoundingAmount>0</PayableRoundingAmount><PayableAmount{c}>{doc.amount_due}</PayableAmount{c}></LegalMonetaryTotal>"
        f"<PaymentMeans><Payment><PaidAmount>{doc.amount_due}</PaidAmount><PaymentMeansCode>42</PaymentMeansCode>"
        f"<Details><PaymentDueDate>{doc.due}</PaymentDueDate><ID>123456789</ID><BankCode>0100</BankCode>"
        f"<IBAN>{doc.iban}</IBAN>{vs}</Details></Payment></PaymentMeans></Invoice>"
    )
    return xml.encode()


def ubl_xml(doc: Doc) -> bytes:
    cur = doc.currency

    def party(p: Company) -> str:
        taxes = ""
        if p.vat_id:
            taxes += f"<cac:PartyTaxScheme><cbc:CompanyID>{p.vat_id}</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>"
        if p.country == "SK" and p.dic:
            taxes += f"<cac:PartyTaxScheme><cbc:CompanyID>{p.dic}</cbc:CompanyID><cac:TaxScheme><cbc:ID>TAX</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>"
        legal = f"<cbc:CompanyID>{p.ico}</cbc:CompanyID>" if p.ico else ""
        return (
            f"<cac:Party><cac:PartyName><cbc:Name>{_x(p.name)}</cbc:Name></cac:PartyName>"
            f"<cac:PostalAddress><cbc:StreetName>{_x(p.street)}</cbc:StreetName><cbc:CityName>{_x(p.city)}</cbc:CityName>"
            f"<cbc:PostalZone>{p.zip}</cbc:PostalZone><cac:Country><cbc:IdentificationCode>{p.country}</cbc:IdentificationCode></cac:Country></cac:PostalAddress>"
            f"{taxes}<cac:PartyLegalEntity><cbc:RegistrationName>{_x(p.name)}</cbc:RegistrationName>{legal}</cac:PartyLegalEntity></cac:Party>"
        )

    lines = "".join(
        f'<cac:InvoiceLine><cbc:ID>{i}</cbc:ID><cbc:InvoicedQuantity unitCode="{_x(ln["unit"])}">{ln["quantity"]}</cbc:InvoicedQuantity>'
        f'<cbc:LineExtensionAmount currencyID="{cur}">{ln["total"]}</cbc:LineExtensionAmount>'
        f"<cac:Item><cbc:Name>{_x(ln['description'])}</cbc:Name><cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID>"
        f"<cbc:Percent>{ln['vat_rate']}</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory></cac:Item>"
        f'<cac:Price><cbc:PriceAmount currencyID="{cur}">{ln["unit_price"]}</cbc:PriceAmount></cac:Price></cac:InvoiceLine>'
        for i, ln in enumerate(doc.lines, 1)
    )
    subs = "".join(
        f'<cac:TaxSubtotal><cbc:TaxableAmount currencyID="{cur}">{r["base"]}</cbc:TaxableAmount>'
        f'<cbc:TaxAmount currencyID="{cur}">{r["tax"]}</cbc:TaxAmount><cac:TaxCategory><cbc:ID>S</cbc:ID>'
        f"<cbc:Percent>{r['rate']}</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory></cac:TaxSubtotal>"
        for r in doc.breakdown
    )
    vs = f"<cbc:PaymentID>{doc.vs}</cbc:PaymentID>" if doc.vs else ""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
        'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
        'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
        "<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>"
        "<cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>"
        f"<cbc:ID>{_x(doc.number)}</cbc:ID><cbc:IssueDate>{doc.issue}</cbc:IssueDate><cbc:DueDate>{doc.due}</cbc:DueDate>"
        f"<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode><cbc:TaxPointDate>{doc.tax_point}</cbc:TaxPointDate>"
        f"<cbc:DocumentCurrencyCode>{cur}</cbc:DocumentCurrencyCode>"
        f"<cac:AccountingSupplierParty>{party(doc.supplier)}</cac:AccountingSupplierParty>"
        f"<cac:AccountingCustomerParty>{party(doc.customer)}</cac:AccountingCustomerParty>"
        f"<cac:PaymentMeans><cbc:PaymentMeansCode>30</cbc:PaymentMeansCode>{vs}"
        f"<cac:PayeeFinancialAccount><cbc:ID>{doc.iban}</cbc:ID></cac:PayeeFinancialAccount></cac:PaymentMeans>"
        f'<cac:TaxTotal><cbc:TaxAmount currencyID="{cur}">{doc.total_vat}</cbc:TaxAmount>{subs}</cac:TaxTotal>'
        f'<cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="{cur}">{doc.total_without}</cbc:LineExtensionAmount>'
        f'<cbc:TaxExclusiveAmount currencyID="{cur}">{doc.total_without}</cbc:TaxExclusiveAmount>'
        f'<cbc:TaxInclusiveAmount currencyID="{cur}">{doc.total_with}</cbc:TaxInclusiveAmount>'
        f'<cbc:PayableAmount currencyID="{cur}">{doc.amount_due}</cbc:PayableAmount></cac:LegalMonetaryTotal>'
        f"{lines}</Invoice>"
    )
    return xml.encode()


def cii_xml(doc: Doc) -> bytes:
    cur = doc.currency

    def d(value: date) -> str:
        return f'<udt:DateTimeString format="102">{value.strftime("%Y%m%d")}</udt:DateTimeString>'

    def party(tag: str, p: Company) -> str:
        legal = (
            f"<ram:SpecifiedLegalOrganization><ram:ID>{p.ico}</ram:ID></ram:SpecifiedLegalOrganization>"
            if p.ico
            else ""
        )
        taxes = (
            f'<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{p.vat_id}</ram:ID></ram:SpecifiedTaxRegistration>'
            if p.vat_id
            else ""
        )
        if p.country == "SK" and p.dic:
            taxes += f'<ram:SpecifiedTaxRegistration><ram:ID schemeID="FC">{p.dic}</ram:ID></ram:SpecifiedTaxRegistration>'
        return (
            f"<ram:{tag}><ram:Name>{_x(p.name)}</ram:Name>{legal}<ram:PostalTradeAddress>"
            f"<ram:PostcodeCode>{p.zip}</ram:PostcodeCode><ram:LineOne>{_x(p.street)}</ram:LineOne>"
            f"<ram:CityName>{_x(p.city)}</ram:CityName><ram:CountryID>{p.country}</ram:CountryID>"
            f"</ram:PostalTradeAddress>{taxes}</ram:{tag}>"
        )

    items = "".join(
        f"<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>{i}</ram:LineID></ram:AssociatedDocumentLineDocument>"
        f"<ram:SpecifiedTradeProduct><ram:Name>{_x(ln['description'])}</ram:Name></ram:SpecifiedTradeProduct>"
        f"<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{ln['unit_price']}</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>"
        f'<ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="{_x(ln["unit"])}">{ln["quantity"]}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>'
        f"<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode>"
        f"<ram:RateApplicablePercent>{ln['vat_rate']}</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
        f"<ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{ln['total']}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>"
        f"</ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>"
        for i, ln in enumerate(doc.lines, 1)
    )
    taxes = "".join(
        f"<ram:ApplicableTradeTax><ram:CalculatedAmount>{r['tax']}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>"
        f"<ram:BasisAmount>{r['base']}</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode>"
        f"<ram:RateApplicablePercent>{r['rate']}</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
        for r in doc.breakdown
    )
    vs = f"<ram:PaymentReference>{doc.vs}</ram:PaymentReference>" if doc.vs else ""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" '
        'xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" '
        'xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100" '
        'xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100">'
        "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>"
        "<ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>"
        f"<rsm:ExchangedDocument><ram:ID>{_x(doc.number)}</ram:ID><ram:TypeCode>380</ram:TypeCode>"
        f"<ram:IssueDateTime>{d(doc.issue)}</ram:IssueDateTime></rsm:ExchangedDocument>"
        f"<rsm:SupplyChainTradeTransaction>{items}"
        f"<ram:ApplicableHeaderTradeAgreement>{party('SellerTradeParty', doc.supplier)}{party('BuyerTradeParty', doc.customer)}</ram:ApplicableHeaderTradeAgreement>"
        f"<ram:ApplicableHeaderTradeDelivery><ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime>{d(doc.tax_point)}</ram:OccurrenceDateTime>"
        f"</ram:ActualDeliverySupplyChainEvent></ram:ApplicableHeaderTradeDelivery>"
        f"<ram:ApplicableHeaderTradeSettlement>{vs}<ram:InvoiceCurrencyCode>{cur}</ram:InvoiceCurrencyCode>"
        f"<ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>58</ram:TypeCode><ram:PayeePartyCreditorFinancialAccount>"
        f"<ram:IBANID>{doc.iban}</ram:IBANID></ram:PayeePartyCreditorFinancialAccount></ram:SpecifiedTradeSettlementPaymentMeans>"
        f"{taxes}<ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime>{d(doc.due)}</ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>"
        f"<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>{doc.total_without}</ram:LineTotalAmount>"
        f"<ram:TaxBasisTotalAmount>{doc.total_without}</ram:TaxBasisTotalAmount>"
        f'<ram:TaxTotalAmount currencyID="{cur}">{doc.total_vat}</ram:TaxTotalAmount>'
        f"<ram:GrandTotalAmount>{doc.total_with}</ram:GrandTotalAmount><ram:DuePayableAmount>{doc.amount_due}</ram:DuePayableAmount>"
        f"</ram:SpecifiedTradeSettlementHeaderMonetarySummation></ram:ApplicableHeaderTradeSettlement>"
        f"</rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>"
    )
    return xml.encode()


# --- printed invoices ------------------------------------------------------------------------

WORDS: dict[str, dict[str, list[str]]] = {
    "cs": {
        "title": ["FAKTURA – DAŇOVÝ DOKLAD", "Faktura", "DAŇOVÝ DOKLAD"],
        "number": ["Číslo faktury", "Faktura č.", "Číslo dokladu"],
        "issue": ["Datum vystavení"], "tax": ["DUZP", "Datum uskutečnění zdanitelného plnění",
        "Datum zdanitelného plnění"], "due": ["Datum splatnosti", "Splatnost"],
        "vs": ["Variabilní symbol", "VS"], "supplier": ["Dodavatel"], "customer": ["Odběratel"],
        "ico": ["IČO", "IČ"], "dic": ["DIČ"], "vat": [], "iban": ["IBAN"],
        "without": ["Celkem bez DPH", "Základ DPH celkem"], "vat_total": ["DPH celkem", "Celkem DPH"],
        "with": ["Celkem s DPH", "Celkem včetně DPH"], "due_amount": ["K úhradě", "Celkem k úhradě"],
        "cols": [["Popis", "Položka", "Název"], ["Množství", "Počet"], ["MJ"],
                 ["Cena za MJ", "Jedn. cena"], ["DPH %", "Sazba"], ["Celkem", "Celkem bez DPH"]],
        "recap": ["Rekapitulace DPH"], "rcols": [["Sazba"], ["Základ"], ["DPH"]],
        "country": {"CZ": "Česká republika", "SK": "Slovensko", "DE": "Německo"},
    },
    "sk": {
        "title": ["FAKTÚRA", "Faktúra – daňový doklad"],
        "number": ["Číslo faktúry", "Faktúra č."], "issue": ["Dátum vystavenia", "Dátum vyhotovenia"],
        "tax": ["Dátum dodania"], "due": ["Dátum splatnosti"], "vs": ["Variabilný symbol"],
        "supplier": ["Dodávateľ"], "customer": ["Odberateľ"], "ico": ["IČO"], "dic": ["DIČ"],
        "vat": ["IČ DPH"], "iban": ["IBAN"],
        "without": ["Celkom bez DPH", "Spolu bez DPH"], "vat_total": ["DPH spolu", "DPH celkom"],
        "with": ["Celkom s DPH", "Spolu s DPH"], "due_amount": ["K úhrade", "Suma na úhradu"],
        "cols": [["Popis", "Označenie"], ["Množstvo"], ["MJ"], ["Jedn. cena"], ["DPH %", "Sadzba"],
                 ["Spolu", "Celkom"]],
        "recap": ["Rekapitulácia DPH"], "rcols": [["Sadzba"], ["Základ"], ["DPH"]],
        "country": {"CZ": "Česká republika", "SK": "Slovensko", "DE": "Nemecko"},
    },
    "en": {
        "title": ["INVOICE", "Tax invoice"],
        "number": ["Invoice No.", "Invoice number"], "issue": ["Issue date", "Date of issue", "Invoice date"],
        "tax": ["Tax point date", "Date of supply"], "due": ["Due date", "Payment due"],
        "vs": ["Payment reference"], "supplier": ["Supplier", "Seller"],
        "customer": ["Customer", "Buyer", "Bill to"], "ico": ["Company ID", "Reg. No."], "dic": [],
        "vat": ["VAT ID", "VAT No."], "iban": ["IBAN"],
        "without": ["Subtotal", "Total excl. VAT"], "vat_total": ["VAT total", "Total VAT"],
        "with": ["Total incl. VAT"], "due_amount": ["Amount due", "Balance due"],
        "cols": [["Description", "Item"], ["Qty", "Quantity"], ["Unit"], ["Unit price"],
                 ["VAT %"], ["Amount", "Total"]],
        "recap": ["VAT summary"], "rcols": [["Rate"], ["Base"], ["VAT"]],
        "country": {"CZ": "Czech Republic", "SK": "Slovakia", "DE": "Germany"},
    },
    "de": {
        "title": ["RECHNUNG", "Rechnung"],
        "number": ["Rechnungsnummer", "Rechnung Nr."], "issue": ["Rechnungsdatum"],
        "tax": ["Leistungsdatum", "Lieferdatum"], "due": ["Fällig am", "Zahlbar bis"],
        "vs": ["Verwendungszweck"], "supplier": ["Lieferant", "Rechnungssteller"],
        "customer": ["Kunde", "Rechnungsempfänger"], "ico": ["Firmen-Nr."], "dic": [],
        "vat": ["USt-IdNr."], "iban": ["IBAN"],
        "without": ["Nettobetrag", "Summe netto"], "vat_total": ["MwSt. gesamt", "Umsatzsteuer"],
        "with": ["Gesamtbetrag", "Bruttobetrag"], "due_amount": ["Zahlbetrag", "Zu zahlen"],
        "cols": [["Bezeichnung", "Artikel"], ["Menge"], ["Einheit"], ["Einzelpreis"],
                 ["MwSt. %", "USt %"], ["Gesamt", "Betrag"]],
        "recap": ["Umsatzsteuer-Aufstellung"], "rcols": [["Satz"], ["Netto"], ["MwSt."]],
        "country": {"CZ": "Tschechien", "SK": "Slowakei", "DE": "Deutschland"},
    },
}  # fmt: skip

# The held-out split prints other wordings than dev (written once, before measuring; the rules
# were never adjusted to a held-out miss without saying so in the report).
HELDOUT_WORDS: dict[str, dict[str, list[str]]] = {
    "cs": {
        "number": ["Faktura - daňový doklad č.", "Doklad číslo", "Faktura číslo"],
        "issue": ["Datum vystavení dokladu", "Vystaveno dne", "Datum vyhotovení"],
        "tax": ["Datum uskut. zdan. plnění", "Datum zdan. plnění", "DUZP"],
        "due": ["Datum splatnosti", "Splatno dne", "Termín splatnosti"],
        "vs": ["Var. symbol", "Variabilní symbol", "VS"],
        "supplier": ["Dodavatel", "Prodávající"], "customer": ["Odběratel", "Kupující", "Příjemce"],
        "without": ["Celkem bez DPH", "Základ daně celkem", "Mezisoučet"],
        "vat_total": ["DPH celkem", "Výše DPH"], "with": ["Celkem s DPH", "Celková částka s DPH"],
        "due_amount": ["K úhradě", "Zbývá uhradit", "K zaplacení"],
    },
    "sk": {
        "number": ["Faktúra číslo", "Číslo dokladu"], "issue": ["Dátum vystavenia", "Vystavené dňa"],
        "tax": ["Dátum dodania tovaru/služby", "Dátum dodania"], "due": ["Dátum splatnosti", "Splatné do"],
        "vs": ["Variabilný symbol", "VS"], "supplier": ["Dodávateľ", "Predávajúci"],
        "customer": ["Odberateľ", "Kupujúci"], "without": ["Základ dane", "Spolu bez DPH"],
        "vat_total": ["DPH spolu", "Výška DPH"], "with": ["Spolu s DPH", "Celková suma"],
        "due_amount": ["Suma na úhradu", "Zostáva uhradiť"],
    },
    "en": {
        "number": ["Invoice #", "Invoice No.", "Invoice Number"],
        "issue": ["Invoice date", "Date issued", "Issued on"],
        "tax": ["Date of supply", "Delivery date", "Tax point"],
        "due": ["Payment due", "Due by", "Due on"], "vs": ["Payment reference", "Reference"],
        "supplier": ["From", "Seller", "Vendor"], "customer": ["Bill to", "Billed to", "Invoice to"],
        "without": ["Net total", "Net amount", "Subtotal"], "vat_total": ["VAT amount", "Total VAT", "Tax"],
        "with": ["Invoice total", "Grand total", "Total incl. VAT"],
        "due_amount": ["Total due", "Amount payable", "Please pay"],
    },
    "de": {
        "number": ["Rechnungs-Nr.", "Rechnung Nr."], "issue": ["Ausstellungsdatum", "Datum der Rechnung"],
        "tax": ["Lieferdatum", "Leistungsdatum"], "due": ["Fälligkeitsdatum", "Fällig bis", "Zahlungsziel"],
        "vs": ["Zahlungsreferenz"], "supplier": ["Verkäufer", "Auftragnehmer"],
        "customer": ["Rechnungsempfänger", "Käufer", "Auftraggeber"],
        "without": ["Summe netto", "Gesamt netto", "Zwischensumme"],
        "vat_total": ["Summe MwSt.", "USt. gesamt"],
        "with": ["Summe brutto", "Gesamtbetrag brutto", "Rechnungsbetrag"],
        "due_amount": ["Zahlungsbetrag", "Offener Betrag", "Endbetrag"],
    },
}  # fmt: skip

EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"]  # fmt: skip


def fmt_date(value: date, lang: str, rng: random.Random) -> str:
    if lang == "en":
        return rng.choice([f"{value.day} {EN_MONTHS[value.month - 1]} {value.year}",
                           value.isoformat(), f"{value.day:02d}.{value.month:02d}.{value.year}"])  # fmt: skip
    if lang in ("cs", "sk") and rng.random() < 0.4:
        return f"{value.day}. {value.month}. {value.year}"
    return f"{value.day:02d}.{value.month:02d}.{value.year}"


def fmt_amount(value: Decimal, lang: str, currency: str | None = None) -> str:
    text = f"{value:,.2f}"
    if lang in ("cs", "sk"):
        text = text.replace(",", " ").replace(".", ",")
    elif lang == "de":
        text = text.replace(",", "X").replace(".", ",").replace("X", ".")
    if currency:
        sym = {"CZK": "Kč", "EUR": "€" if lang == "de" else "EUR"}.get(currency, currency)
        text = f"{text} {sym}"
    return text


def fmt_qty(value: Decimal, lang: str) -> str:
    text = f"{value.normalize():f}"
    return text.replace(".", ",") if lang != "en" else text


class Page:
    """A reportlab canvas with top-left coordinates and a Czech-capable font."""

    def __init__(self, buffer: io.BytesIO, font_size: float = 9.0) -> None:
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont
        from reportlab.pdfgen.canvas import Canvas

        from spojka.documents.ocr_setup import ensure_document_tools, font_path

        if font_path() is None:
            ensure_document_tools()
        if "DejaVu" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("DejaVu", str(font_path())))
            pdfmetrics.registerFont(TTFont("DejaVu-Bold", str(font_path(bold=True))))
        self.canvas = Canvas(buffer, pagesize=A4, invariant=True)
        self.height = A4[1]
        self.size = font_size

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        bold: bool = False,
        size: float | None = None,
        right: bool = False,
    ) -> None:
        self.canvas.setFont("DejaVu-Bold" if bold else "DejaVu", size or self.size)
        if right:
            self.canvas.drawRightString(x, self.height - y, text)
        else:
            self.canvas.drawString(x, self.height - y, text)

    def rule(self, x0: float, x1: float, y: float) -> None:
        self.canvas.line(x0, self.height - y, x1, self.height - y)

    def save(self) -> None:
        self.canvas.showPage()
        self.canvas.save()


def _party_lines(
    doc: Doc, p: Company, w: dict[str, Any], rng: random.Random, *, sep: str = ": "
) -> list[str]:
    out = [p.name, p.street, f"{p.zip} {p.city}"]
    if rng.random() < 0.5:
        out.append(w["country"][p.country])
    if p.ico and w["ico"]:
        out.append(f"{rng.choice(w['ico'])}{sep}{p.ico}")
    if doc.lang == "sk" and p.country == "SK":
        out.append(f"DIČ{sep}{p.dic}")
        out.append(f"IČ DPH{sep}{p.vat_id}")
    elif w["dic"] and p.dic:
        # a Slovak party abroad is shown by its VAT id (IČ DPH), which is what matters here
        shown = p.vat_id if p.country == "SK" else p.dic
        out.append(f"{rng.choice(w['dic'])}{sep}{shown}")
    elif p.vat_id:
        label = rng.choice(w["vat"]) if w["vat"] else "DIČ"
        out.append(f"{label}{sep}{p.vat_id}")
    return out


def _items_table(
    pg: Page,
    doc: Doc,
    w: dict[str, Any],
    rng: random.Random,
    y: float,
    *,
    order: list[int] | None = None,
) -> float:
    cols = [rng.choice(c) for c in w["cols"]]
    xs = [40, 240, 256, 385, 440, 555]  # desc left; the rest right-aligned
    order = order or [0, 1, 2, 3, 4, 5]
    for i in order:
        pg.text(xs[i], y, cols[i], bold=True, right=i not in (0, 2))
    pg.rule(40, 555, y + 4)
    y += 16
    for ln in doc.lines:
        pg.text(xs[0], y, ln["description"])
        pg.text(xs[1], y, fmt_qty(ln["quantity"], doc.lang), right=True)
        pg.text(xs[2], y, ln["unit"])
        pg.text(xs[3], y, fmt_amount(ln["unit_price"], doc.lang), right=True)
        pg.text(xs[4], y, f"{ln['vat_rate']} %", right=True)
        pg.text(xs[5], y, fmt_amount(ln["total"], doc.lang), right=True)
        y += 14
    pg.rule(40, 555, y - 6)
    return y + 10


def _recap(
    pg: Page, doc: Doc, w: dict[str, Any], rng: random.Random, y: float, x: float = 40
) -> float:
    pg.text(x, y, rng.choice(w["recap"]), bold=True)
    y += 14
    heads = [rng.choice(c) for c in w["rcols"]]
    pg.text(x, y, heads[0], bold=True)
    pg.text(x + 130, y, heads[1], bold=True, right=True)
    pg.text(x + 210, y, heads[2], bold=True, right=True)
    y += 14
    for row in doc.breakdown:
        pg.text(x, y, f"{row['rate']} %")
        pg.text(x + 130, y, fmt_amount(row["base"], doc.lang), right=True)
        pg.text(x + 210, y, fmt_amount(row["tax"], doc.lang), right=True)
        y += 13
    return y + 8


def _totals(
    pg: Page, doc: Doc, w: dict[str, Any], rng: random.Random, y: float, x_label: float = 330
) -> float:
    for key, value in (("without", doc.total_without), ("vat_total", doc.total_vat),
                       ("with", doc.total_with), ("due_amount", doc.amount_due)):  # fmt: skip
        pg.text(x_label, y, rng.choice(w[key]) + ":", bold=key == "due_amount")
        pg.text(
            555, y, fmt_amount(value, doc.lang, doc.currency), right=True, bold=key == "due_amount"
        )
        y += 15
    return y


def _header_pairs(doc: Doc, w: dict[str, Any], rng: random.Random) -> list[tuple[str, str]]:
    pairs = [
        (rng.choice(w["number"]), doc.number),
        (rng.choice(w["issue"]), fmt_date(doc.issue, doc.lang, rng)),
        (rng.choice(w["tax"]), fmt_date(doc.tax_point, doc.lang, rng)),
        (rng.choice(w["due"]), fmt_date(doc.due, doc.lang, rng)),
    ]
    if doc.vs:
        pairs.append((rng.choice(w["vs"]), doc.vs))
    return pairs


def _iban_text(doc: Doc, rng: random.Random) -> str:
    iban = doc.iban
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban


def layout_classic(pg: Page, doc: Doc, rng: random.Random) -> None:
    """Title, parties side by side under headings, then 'label: value' lines, table, totals."""
    w = doc.words or WORDS[doc.lang]
    pg.text(40, 50, rng.choice(w["title"]), bold=True, size=16)
    for x, role, p in ((40, "supplier", doc.supplier), (310, "customer", doc.customer)):
        pg.text(x, 85, rng.choice(w[role]) + ":", bold=True)
        for i, line in enumerate(_party_lines(doc, p, w, rng)):
            pg.text(x, 100 + 13 * i, line)
    y = 205
    for label, value in _header_pairs(doc, w, rng):
        pg.text(40, y, f"{label}: {value}")
        y += 14
    pg.text(310, 205, f"IBAN: {_iban_text(doc, rng)}")
    y = _items_table(pg, doc, w, rng, max(y, 230) + 15)
    _recap(pg, doc, w, rng, y)
    _totals(pg, doc, w, rng, y)


def layout_stacked(pg: Page, doc: Doc, rng: random.Random) -> None:
    """Header fields as a row of boxes, label above value; parties below."""
    w = doc.words or WORDS[doc.lang]
    pg.text(555, 45, rng.choice(w["title"]), bold=True, size=15, right=True)
    pairs = _header_pairs(doc, w, rng)
    x = 40.0
    for label, value in pairs:
        pg.text(x, 80, label, size=7)
        pg.text(x, 93, value, bold=True)
        x += max(95.0, pg.canvas.stringWidth(label, "DejaVu", 7) + 14)
    for x, role, p in ((40, "supplier", doc.supplier), (310, "customer", doc.customer)):
        pg.text(x, 130, rng.choice(w[role]).upper(), bold=True)
        for i, line in enumerate(_party_lines(doc, p, w, rng)):
            pg.text(x, 145 + 13 * i, line)
    y = _items_table(pg, doc, w, rng, 260)
    y2 = _totals(pg, doc, w, rng, y)
    _recap(pg, doc, w, rng, y)
    pg.text(40, y2 + 30, "IBAN")
    pg.text(40, y2 + 43, _iban_text(doc, rng))


def layout_keyvalue(pg: Page, doc: Doc, rng: random.Random) -> None:
    """Supplier letterhead, a label column with values in a second column, customer below."""
    w = doc.words or WORDS[doc.lang]
    pg.text(40, 45, rng.choice(w[("supplier")]) + ":", bold=True)
    for i, line in enumerate(_party_lines(doc, doc.supplier, w, rng)):
        pg.text(40, 60 + 12 * i, line, size=8)
    pg.text(330, 45, rng.choice(w["title"]), bold=True, size=14)
    y = 70
    for label, value in [*_header_pairs(doc, w, rng), ("IBAN", _iban_text(doc, rng))]:
        pg.text(300, y, label, size=8)
        pg.text(555, y, value, right=True)
        y += 14
    pg.text(40, 185, rng.choice(w["customer"]) + ":", bold=True)
    for i, line in enumerate(_party_lines(doc, doc.customer, w, rng)):
        pg.text(40, 200 + 12 * i, line)
    y = _items_table(pg, doc, w, rng, 310)
    _recap(pg, doc, w, rng, y)
    _totals(pg, doc, w, rng, y)


# held-out layouts: never used for the dev split


def layout_swapped(pg: Page, doc: Doc, rng: random.Random) -> None:
    """Customer on the left, supplier on the right, smaller type, fields as 'label value'
    with wide gaps, totals on the left."""
    w = doc.words or WORDS[doc.lang]
    pg.size = 8
    pg.text(40, 40, rng.choice(w["title"]), bold=True, size=18)
    for x, role, p in ((40, "customer", doc.customer), (320, "supplier", doc.supplier)):
        pg.text(x, 75, rng.choice(w[role]), bold=True)
        for i, line in enumerate(_party_lines(doc, p, w, rng, sep=" ")):
            pg.text(x, 88 + 11 * i, line)
    y = 190
    for label, value in _header_pairs(doc, w, rng):
        pg.text(320, y, label)
        pg.text(570, y, value, right=True)
        y += 12
    pg.text(40, 190, "IBAN")
    pg.text(40, 202, _iban_text(doc, rng))
    y = _items_table(pg, doc, w, rng, max(y, 260) + 10)
    y = _totals(pg, doc, w, rng, y, x_label=40) + 10
    _recap(pg, doc, w, rng, y, x=300)


def layout_sidebar(pg: Page, doc: Doc, rng: random.Random) -> None:
    """Parties stacked in a left column; header fields stacked label-over-value on the right;
    no VAT recap table."""
    w = doc.words or WORDS[doc.lang]
    pg.text(40, 40, rng.choice(w["title"]) + " " + doc.number, bold=True, size=14)
    y = 75
    for role, p in (("supplier", doc.supplier), ("customer", doc.customer)):
        pg.text(40, y, rng.choice(w[role]), bold=True)
        for i, line in enumerate(_party_lines(doc, p, w, rng)):
            pg.text(40, y + 13 * (i + 1), line)
        y += 13 * 9 + 10
    y2 = 75
    for label, value in [*_header_pairs(doc, w, rng)[1:], ("IBAN", _iban_text(doc, rng))]:
        pg.text(360, y2, label, size=7)
        pg.text(360, y2 + 11, value)
        y2 += 28
    y = _items_table(pg, doc, w, rng, max(y, y2) + 10)
    _totals(pg, doc, w, rng, y)


def layout_letterhead(pg: Page, doc: Doc, rng: random.Random) -> None:
    """No supplier heading: the supplier is the letterhead; the title on the right; header
    fields in a right-hand column; totals only (no recap)."""
    w = doc.words or WORDS[doc.lang]
    lines = _party_lines(doc, doc.supplier, w, rng)
    pg.text(40, 45, lines[0], bold=True, size=13)
    for i, line in enumerate(lines[1:]):
        pg.text(40, 62 + 11 * i, line, size=8)
    pg.text(555, 45, rng.choice(w["title"]), bold=True, size=16, right=True)
    pg.text(330, 150, rng.choice(w["customer"]) + ":", bold=True)
    for i, line in enumerate(_party_lines(doc, doc.customer, w, rng)):
        pg.text(330, 165 + 12 * i, line)
    y = 150
    pairs = [*_header_pairs(doc, w, rng), ("IBAN", _iban_text(doc, rng))]
    value_x = 40 + max(pg.canvas.stringWidth(f"{label}:", "DejaVu", 8) for label, _ in pairs) + 12
    for label, value in pairs:
        pg.text(40, y, f"{label}:", size=8)
        pg.text(value_x, y, value, size=8)
        y += 13
    y = _items_table(pg, doc, w, rng, max(y, 270) + 12)
    _totals(pg, doc, w, rng, y)


DEV_LAYOUTS = {"classic": layout_classic, "stacked": layout_stacked, "keyvalue": layout_keyvalue}
HELDOUT_LAYOUTS = {
    "swapped": layout_swapped,
    "sidebar": layout_sidebar,
    "letterhead": layout_letterhead,
}


def render_pdf(doc: Doc, layout: str, rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    pg = Page(buffer)
    (DEV_LAYOUTS | HELDOUT_LAYOUTS)[layout](pg, doc, rng)
    pg.save()
    return buffer.getvalue()


def scan_image(pdf: bytes, rng: random.Random, *, dpi: int = 200) -> bytes:
    """A 'scan' of a PDF page: grey, slightly rotated, noisy, saved as PNG with its dpi."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageFilter

    page = pdfium.PdfDocument(pdf)[0]
    image = page.render(scale=dpi / 72).to_pil().convert("L")
    image = image.rotate(
        rng.uniform(-1.0, 1.0), resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255
    )
    noise = Image.effect_noise(image.size, rng.uniform(12, 24))
    image = Image.blend(image, noise, 0.12).filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.6)))
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi), optimize=True)
    return out.getvalue()


def facturx_pdf(doc: Doc, rng: random.Random) -> bytes:
    from facturx import generate_from_binary

    visual = render_pdf(doc, "classic", rng)
    return generate_from_binary(
        visual, cii_xml(doc), flavor="factur-x", level="en16931", check_xsd=False
    )


# --- the corpus ------------------------------------------------------------------------------

LANGS = ["cs", "sk", "en", "de"]


def generate(
    out: Path, *, split: str = "dev", count: int = 40, scans: int | None = None
) -> list[Path]:
    """Write ``count`` documents (+ expected JSON); returns the document paths.

    The mix: 1/8 ISDOC, 1/8 UBL, 1/8 Factur-X, the rest text PDFs, of which ``scans``
    (default a fifth) are also rendered as noisy scans.
    """
    out.mkdir(parents=True, exist_ok=True)
    seed = {"dev": 7_2025, "heldout": 99_1234}[split]
    rng = random.Random(seed)
    layouts = list((DEV_LAYOUTS if split == "dev" else HELDOUT_LAYOUTS).keys())
    n_xml = max(1, count // 8)
    n_scan = scans if scans is not None else max(1, count // 5)
    paths: list[Path] = []
    kinds = ["isdoc"] * n_xml + ["ubl"] * n_xml + ["facturx"] * n_xml
    kinds += ["scan"] * n_scan
    kinds += ["text"] * max(0, count - len(kinds))
    for i, kind in enumerate(kinds):
        lang = LANGS[i % len(LANGS)]
        if kind in ("isdoc", "ubl", "facturx") and lang == "de" and kind == "isdoc":
            lang = "cs"  # ISDOC is a Czech format
        doc = make_doc(rng, lang)
        if split == "heldout":
            doc.words = {**WORDS[lang], **HELDOUT_WORDS[lang]}
        layout = layouts[i % len(layouts)]
        name = f"{split}-{i:03d}-{kind}-{lang}"
        meta: dict[str, Any] = {"kind": kind, "lang": lang, "split": split}
        if kind == "isdoc":
            path = out / f"{name}.isdoc"
            path.write_bytes(isdoc_xml(doc, version5=i % 2 == 1))
        elif kind == "ubl":
            path = out / f"{name}.xml"
            path.write_bytes(ubl_xml(doc))
        elif kind == "facturx":
            path = out / f"{name}.pdf"
            path.write_bytes(facturx_pdf(doc, rng))
        elif kind == "scan":
            path = out / f"{name}-{layout}.png"
            path.write_bytes(scan_image(render_pdf(doc, layout, rng), rng))
            meta["layout"] = layout
        else:
            path = out / f"{name}-{layout}.pdf"
            path.write_bytes(render_pdf(doc, layout, rng))
            meta["layout"] = layout
        expected = doc.expected() | {"_meta": meta}
        if kind == "isdoc" and doc.currency != "CZK":
            # ISDOC states unit prices only in the local currency: not known for this one
            for line in expected["lines"]:
                line["unit_price"] = None
        path.with_name(path.name + ".expected.json").write_text(
            json.dumps(expected, ensure_ascii=False, indent=1)
        )
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", choices=["dev", "heldout"], default="dev")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--scans", type=int, default=None)
    args = parser.parse_args()
    for path in generate(args.out, split=args.split, count=args.count, scans=args.scans):
        print(path)


if __name__ == "__main__":
    main()
