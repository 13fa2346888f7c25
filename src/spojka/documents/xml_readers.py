"""Readers for structured e-invoices: ISDOC 5.x/6.x, UN/CEFACT CII (Factur-X, ZUGFeRD 2.x) and
UBL 2.1 (Peppol BIS 3, Slovak e-invoice).

Every value comes from the element that states it (source "xml", confidence 1.0). The only
values not read straight from the XML are derivations the law fixes (a Czech DIČ is the VAT id;
a Slovak IČ DPH is "SK" + DIČ); they are marked source "rule".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from lxml import etree

from spojka.core.errors import ValidationError
from spojka.documents.models import FieldInfo, Invoice, InvoiceLine, VatBreakdown
from spojka.documents.parsing import decimal_or_none, plain_rate

XML_FIELD = FieldInfo(source="xml", confidence=1.0)
RULE_FIELD = FieldInfo(source="rule", confidence=0.95)

ISDOC_NAMESPACES = ("http://isdoc.cz/namespace/2013", "http://isdoc.cz/namespace/invoice")
CII_NAMESPACE = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
UBL_NAMESPACES = (
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
)


class UnsupportedXml(ValidationError):
    """The XML is not an invoice format Spojka reads."""

    code = "unsupported_xml"


# --- small helpers over local names, so ISDOC 5 and 6 (different namespaces) read alike --------


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _children(el: etree._Element | None, name: str) -> Iterator[etree._Element]:
    if el is None:
        return
    for child in el:
        if isinstance(child.tag, str) and _local(child) == name:
            yield child


def _find(el: etree._Element | None, path: str) -> etree._Element | None:
    for name in path.split("/"):
        if el is None:
            return None
        el = next(_children(el, name), None)
    return el


def _findall(el: etree._Element | None, path: str) -> list[etree._Element]:
    parts = path.split("/")
    current = [el] if el is not None else []
    for name in parts:
        current = [c for p in current for c in _children(p, name)]
    return current


def _text(el: etree._Element | None, path: str) -> str | None:
    found = _find(el, path) if path else el
    if found is None or found.text is None:
        return None
    value = " ".join(found.text.split())
    return value or None


def _dec(el: etree._Element | None, path: str) -> Decimal | None:
    return decimal_or_none(_text(el, path))


def _iso_date(value: str | None) -> date | None:
    if not value:
        return None
    value = value.strip()
    try:
        if len(value) == 8 and value.isdigit():  # CII format 102: YYYYMMDD
            return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


class _Builder:
    """Sets fields on an Invoice, remembering which ones the XML stated."""

    def __init__(self) -> None:
        self.invoice = Invoice()

    def put(self, path: str, value: object, info: FieldInfo = XML_FIELD) -> None:
        if value is None or value == "":
            return
        self.invoice.set(path, value, info)

    def party_ids(
        self, prefix: str, *, ico: str | None, vat_ids: list[str], tax_ids: list[str]
    ) -> None:
        """Place IČO / DIČ / VAT id; CZ DIČ equals the VAT id, SK IČ DPH is SK + DIČ."""
        self.put(f"{prefix}.ico", ico)
        vat = next((v for v in vat_ids if v), None)
        self.put(f"{prefix}.vat_id", vat)
        dic = next((t for t in tax_ids if t), None)
        if dic:
            self.put(f"{prefix}.dic", dic)
        elif vat and vat[:2].upper() == "CZ":
            self.put(f"{prefix}.dic", vat, RULE_FIELD)
        elif vat and vat[:2].upper() == "SK" and vat[2:].isdigit():
            self.put(f"{prefix}.dic", vat[2:], RULE_FIELD)


def _join_address(*parts: str | None) -> str | None:
    street, zone, city = parts[0], parts[1], parts[2]
    town = " ".join(p for p in (zone, city) if p)
    joined = ", ".join(p for p in (street, town) if p)
    return joined or None


# --- ISDOC ----------------------------------------------------------------------------------


def _isdoc_party(b: _Builder, party: etree._Element | None, prefix: str) -> None:
    if party is None:
        return
    b.put(f"{prefix}.name", _text(party, "PartyName/Name"))
    street = " ".join(
        p
        for p in (
            _text(party, "PostalAddress/StreetName"),
            _text(party, "PostalAddress/BuildingNumber"),
        )
        if p
    )
    b.put(
        f"{prefix}.address",
        _join_address(
            street or None,
            _text(party, "PostalAddress/PostalZone"),
            _text(party, "PostalAddress/CityName"),
        ),
    )
    b.put(f"{prefix}.country", _text(party, "PostalAddress/Country/IdentificationCode"))
    vat_ids: list[str] = []
    tax_ids: list[str] = []
    for scheme in _findall(party, "PartyTaxScheme"):
        company_id = _text(scheme, "CompanyID")
        kind = (_text(scheme, "TaxScheme") or "").upper()
        if not company_id:
            continue
        # ISDOC: TaxScheme "VAT" holds the DIČ (CZ…); "TIN" the Slovak DIČ without prefix
        if kind == "VAT":
            vat_ids.append(company_id)
        else:
            tax_ids.append(company_id)
    b.party_ids(
        prefix, ico=_text(party, "PartyIdentification/ID"), vat_ids=vat_ids, tax_ids=tax_ids
    )


def read_isdoc(root: etree._Element) -> Invoice:
    b = _Builder()
    foreign = _text(root, "ForeignCurrencyCode")
    curr = "Curr" if foreign else ""  # amounts in a foreign currency sit in the *Curr elements
    b.put("number", _text(root, "ID"))
    b.put("issue_date", _iso_date(_text(root, "IssueDate")))
    b.put("tax_point_date", _iso_date(_text(root, "TaxPointDate")))
    b.put("currency", foreign or _text(root, "LocalCurrencyCode"))
    _isdoc_party(b, _find(root, "AccountingSupplierParty/Party"), "supplier")
    _isdoc_party(b, _find(root, "AccountingCustomerParty/Party"), "customer")
    lines = []
    for line in _findall(root, "InvoiceLines/InvoiceLine"):
        qty_el = _find(line, "InvoicedQuantity")
        lines.append(
            InvoiceLine(
                description=_text(line, "Item/Description"),
                quantity=_dec(line, "InvoicedQuantity"),
                unit=qty_el.get("unitCode") if qty_el is not None else None,
                unit_price=_dec(line, "UnitPrice") if not foreign else None,
                vat_rate=_rate(_dec(line, "ClassifiedTaxCategory/Percent")),
                total=_dec(line, f"LineExtensionAmount{curr}"),
            )
        )
    if lines:
        b.put("lines", lines)
    breakdown = [
        VatBreakdown(
            rate=_rate(_dec(sub, "TaxCategory/Percent")) or Decimal(0),
            base=_dec(sub, f"TaxableAmount{curr}"),
            tax=_dec(sub, f"TaxAmount{curr}"),
        )
        for sub in _findall(root, "TaxTotal/TaxSubTotal")
    ]
    if breakdown:
        b.put("vat_breakdown", breakdown)
    totals = _find(root, "LegalMonetaryTotal")
    b.put("total_without_vat", _dec(totals, f"TaxExclusiveAmount{curr}"))
    b.put("total_with_vat", _dec(totals, f"TaxInclusiveAmount{curr}"))
    b.put("amount_due", _dec(totals, f"PayableAmount{curr}"))
    b.put("total_vat", _dec(root, f"TaxTotal/TaxAmount{curr}"))
    details = _find(root, "PaymentMeans/Payment/Details")
    b.put("due_date", _iso_date(_text(details, "PaymentDueDate")))
    b.put("iban", (_text(details, "IBAN") or "").replace(" ", "") or None)
    b.put("variable_symbol", _text(details, "VariableSymbol"))
    return b.invoice


def _rate(value: Decimal | None) -> Decimal | None:
    return plain_rate(value) if value is not None else None


# --- CII (Factur-X / ZUGFeRD 2.x) ------------------------------------------------------------


def _cii_party(b: _Builder, party: etree._Element | None, prefix: str) -> None:
    if party is None:
        return
    b.put(f"{prefix}.name", _text(party, "Name"))
    addr = _find(party, "PostalTradeAddress")
    street = " ".join(p for p in (_text(addr, "LineOne"), _text(addr, "LineTwo")) if p)
    b.put(
        f"{prefix}.address",
        _join_address(street or None, _text(addr, "PostcodeCode"), _text(addr, "CityName")),
    )
    b.put(f"{prefix}.country", _text(addr, "CountryID"))
    vat_ids: list[str] = []
    tax_ids: list[str] = []
    for reg in _findall(party, "SpecifiedTaxRegistration"):
        id_el = _find(reg, "ID")
        if id_el is None or not id_el.text:
            continue
        (vat_ids if id_el.get("schemeID") == "VA" else tax_ids).append(id_el.text.strip())
    ico = _text(party, "SpecifiedLegalOrganization/ID")
    b.party_ids(prefix, ico=ico, vat_ids=vat_ids, tax_ids=tax_ids)


def read_cii(root: etree._Element) -> Invoice:
    b = _Builder()
    doc = _find(root, "ExchangedDocument")
    b.put("number", _text(doc, "ID"))
    b.put("issue_date", _iso_date(_text(doc, "IssueDateTime/DateTimeString")))
    trade = _find(root, "SupplyChainTradeTransaction")
    agreement = _find(trade, "ApplicableHeaderTradeAgreement")
    _cii_party(b, _find(agreement, "SellerTradeParty"), "supplier")
    _cii_party(b, _find(agreement, "BuyerTradeParty"), "customer")
    delivery = _find(trade, "ApplicableHeaderTradeDelivery")
    settlement = _find(trade, "ApplicableHeaderTradeSettlement")
    tax_point = _iso_date(
        _text(delivery, "ActualDeliverySupplyChainEvent/OccurrenceDateTime/DateTimeString")
    ) or _iso_date(_text(settlement, "ApplicableTradeTax/TaxPointDate/DateString"))
    b.put("tax_point_date", tax_point)
    b.put("currency", _text(settlement, "InvoiceCurrencyCode"))
    b.put("variable_symbol", _text(settlement, "PaymentReference"))
    b.put(
        "iban",
        (
            _text(
                settlement,
                "SpecifiedTradeSettlementPaymentMeans/PayeePartyCreditorFinancialAccount/IBANID",
            )
            or ""
        ).replace(" ", "")
        or None,
    )
    b.put(
        "due_date",
        _iso_date(_text(settlement, "SpecifiedTradePaymentTerms/DueDateDateTime/DateTimeString")),
    )
    lines = []
    for item in _findall(trade, "IncludedSupplyChainTradeLineItem"):
        qty_el = _find(item, "SpecifiedLineTradeDelivery/BilledQuantity")
        lines.append(
            InvoiceLine(
                description=_text(item, "SpecifiedTradeProduct/Name"),
                quantity=_dec(item, "SpecifiedLineTradeDelivery/BilledQuantity"),
                unit=qty_el.get("unitCode") if qty_el is not None else None,
                unit_price=_dec(
                    item, "SpecifiedLineTradeAgreement/NetPriceProductTradePrice/ChargeAmount"
                ),
                vat_rate=_rate(
                    _dec(
                        item,
                        "SpecifiedLineTradeSettlement/ApplicableTradeTax/RateApplicablePercent",
                    )
                ),
                total=_dec(
                    item,
                    "SpecifiedLineTradeSettlement/"
                    "SpecifiedTradeSettlementLineMonetarySummation/LineTotalAmount",
                ),
            )
        )
    if lines:
        b.put("lines", lines)
    breakdown = [
        VatBreakdown(
            rate=_rate(_dec(tax, "RateApplicablePercent")) or Decimal(0),
            base=_dec(tax, "BasisAmount"),
            tax=_dec(tax, "CalculatedAmount"),
        )
        for tax in _findall(settlement, "ApplicableTradeTax")
    ]
    if breakdown:
        b.put("vat_breakdown", breakdown)
    sums = _find(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    b.put("total_without_vat", _dec(sums, "TaxBasisTotalAmount"))
    b.put("total_vat", _dec(sums, "TaxTotalAmount"))
    b.put("total_with_vat", _dec(sums, "GrandTotalAmount"))
    b.put("amount_due", _dec(sums, "DuePayableAmount"))
    return b.invoice


# --- UBL 2.1 / Peppol BIS 3 ------------------------------------------------------------------


def _ubl_party(b: _Builder, party: etree._Element | None, prefix: str) -> None:
    if party is None:
        return
    b.put(
        f"{prefix}.name",
        _text(party, "PartyName/Name") or _text(party, "PartyLegalEntity/RegistrationName"),
    )
    addr = _find(party, "PostalAddress")
    street = " ".join(
        p
        for p in (
            _text(addr, "StreetName"),
            _text(addr, "BuildingNumber"),
            _text(addr, "AdditionalStreetName"),
        )
        if p
    )
    b.put(
        f"{prefix}.address",
        _join_address(street or None, _text(addr, "PostalZone"), _text(addr, "CityName")),
    )
    b.put(f"{prefix}.country", _text(addr, "Country/IdentificationCode"))
    vat_ids: list[str] = []
    tax_ids: list[str] = []
    for scheme in _findall(party, "PartyTaxScheme"):
        company_id = _text(scheme, "CompanyID")
        if not company_id:
            continue
        if (_text(scheme, "TaxScheme/ID") or "").upper() == "VAT":
            vat_ids.append(company_id)
        else:  # Slovak UBL states the DIČ under a non-VAT tax scheme ("TAX"/"TIN")
            tax_ids.append(company_id)
    ico = _text(party, "PartyLegalEntity/CompanyID") or _text(party, "PartyIdentification/ID")
    b.party_ids(prefix, ico=ico, vat_ids=vat_ids, tax_ids=tax_ids)


def read_ubl(root: etree._Element) -> Invoice:
    b = _Builder()
    b.put("number", _text(root, "ID"))
    b.put("issue_date", _iso_date(_text(root, "IssueDate")))
    b.put("tax_point_date", _iso_date(_text(root, "TaxPointDate")))
    due = _text(root, "DueDate") or _text(root, "PaymentMeans/PaymentDueDate")
    b.put("due_date", _iso_date(due))
    b.put("currency", _text(root, "DocumentCurrencyCode"))
    _ubl_party(b, _find(root, "AccountingSupplierParty/Party"), "supplier")
    _ubl_party(b, _find(root, "AccountingCustomerParty/Party"), "customer")
    means = _find(root, "PaymentMeans")
    b.put("variable_symbol", _text(means, "PaymentID"))
    b.put("iban", (_text(means, "PayeeFinancialAccount/ID") or "").replace(" ", "") or None)
    lines = []
    for line in _findall(root, "InvoiceLine") + _findall(root, "CreditNoteLine"):
        qty_el = _find(line, "InvoicedQuantity")
        if qty_el is None:  # lxml elements without children are falsy: no `or` here
            qty_el = _find(line, "CreditedQuantity")
        lines.append(
            InvoiceLine(
                description=_text(line, "Item/Name") or _text(line, "Item/Description"),
                quantity=decimal_or_none(qty_el.text) if qty_el is not None else None,
                unit=qty_el.get("unitCode") if qty_el is not None else None,
                unit_price=_dec(line, "Price/PriceAmount"),
                vat_rate=_rate(_dec(line, "Item/ClassifiedTaxCategory/Percent")),
                total=_dec(line, "LineExtensionAmount"),
            )
        )
    if lines:
        b.put("lines", lines)
    tax_total = _find(root, "TaxTotal")
    breakdown = [
        VatBreakdown(
            rate=_rate(_dec(sub, "TaxCategory/Percent")) or Decimal(0),
            base=_dec(sub, "TaxableAmount"),
            tax=_dec(sub, "TaxAmount"),
        )
        for sub in _findall(tax_total, "TaxSubtotal")
    ]
    if breakdown:
        b.put("vat_breakdown", breakdown)
    b.put("total_vat", _dec(tax_total, "TaxAmount"))
    totals = _find(root, "LegalMonetaryTotal")
    b.put("total_without_vat", _dec(totals, "TaxExclusiveAmount"))
    b.put("total_with_vat", _dec(totals, "TaxInclusiveAmount"))
    b.put("amount_due", _dec(totals, "PayableAmount"))
    return b.invoice


# --- dispatch --------------------------------------------------------------------------------


def detect_format(root: etree._Element) -> str | None:
    ns = etree.QName(root).namespace or ""
    name = _local(root)
    if ns in ISDOC_NAMESPACES and name == "Invoice":
        return "isdoc"
    if ns == CII_NAMESPACE:
        return "cii"
    if ns in UBL_NAMESPACES:
        return "ubl"
    return None


def parse_xml(data: bytes) -> etree._Element:
    # no network, no entity expansion: invoices come from strangers
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise UnsupportedXml(f"not well-formed XML: {exc}") from None


def read_invoice_xml(data: bytes) -> tuple[str, Invoice]:
    """(format, invoice) from ISDOC, CII or UBL bytes; UnsupportedXml for anything else."""
    root = parse_xml(data)
    fmt = detect_format(root)
    if fmt == "isdoc":
        return fmt, read_isdoc(root)
    if fmt == "cii":
        return fmt, read_cii(root)
    if fmt == "ubl":
        return fmt, read_ubl(root)
    raise UnsupportedXml(
        f"XML root {{{etree.QName(root).namespace}}}{_local(root)} is not ISDOC, CII or UBL"
    )
