"""The demo chapter of supplier invoices (AP), told on a real local Tryton.

Starts Tryton from its golden snapshot (a few seconds), creates a supplier with a confirmed
purchase order, and sends three ISDOC invoices through ``documents.ap_intake``: one matching
the order is posted automatically, the same file again is recognised as a duplicate, and one
not matching the order waits until an approver releases it. Ends with the ROI reference example.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import secrets
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from stdnum.cz import dic as cz_dic

from spojka.connectors.tryton.client import TrytonClient
from spojka.core.errors import SpojkaError
from spojka.documents.intake import take_in
from spojka.documents.posting import create_supplier_with_order
from spojka.flows import local, systems
from spojka.insights.roi import RoiInputs, compute_roi
from spojka.localsystems import tryton
from spojka.runtime import engine, runs
from spojka.runtime.flows import signal_decision

CENT = Decimal("0.01")
Line = tuple[str, int, str]  # description (a Tryton product name), quantity, unit price
BUYER = {"name": "Spojka Demo s.r.o.", "ico": "25596641", "city": "Praha"}


def _ico(rng: random.Random) -> str:
    """A random Czech IČO that passes the invoice checks (check digit, reserved ranges)."""
    while True:
        digits = [rng.randint(0, 9) for _ in range(7)]
        rest = sum(d * w for d, w in zip(digits, range(8, 1, -1), strict=True)) % 11
        ico = "".join(map(str, digits)) + str((11 - rest) % 10)
        if cz_dic.is_valid(ico):
            return ico


def _party(name: str, ico: str, city: str) -> str:
    vat = (
        f"<PartyTaxScheme><CompanyID>CZ{ico}</CompanyID><TaxScheme>VAT</TaxScheme></PartyTaxScheme>"
    )
    return (
        f"<Party><PartyIdentification><ID>{ico}</ID></PartyIdentification>"
        f"<PartyName><Name>{escape(name)}</Name></PartyName>"
        f"<PostalAddress><StreetName>Hlavní</StreetName><BuildingNumber>1</BuildingNumber>"
        f"<CityName>{escape(city)}</CityName><PostalZone>11000</PostalZone>"
        f"<Country><IdentificationCode>CZ</IdentificationCode><Name/></Country></PostalAddress>"
        f"{vat}</Party>"
    )


def isdoc(number: str, supplier: dict[str, str], lines: list[Line], rate: int = 21) -> bytes:
    """A minimal ISDOC 6 invoice in CZK with one VAT rate."""
    today = dt.date.today()
    base = Decimal(0)
    rows = []
    for i, (name, quantity, price) in enumerate(lines, 1):
        total = (Decimal(quantity) * Decimal(price)).quantize(CENT)
        base += total
        tax = (total * rate / 100).quantize(CENT, ROUND_HALF_UP)
        rows.append(
            f"<InvoiceLine><ID>{i}</ID>"
            f'<InvoicedQuantity unitCode="ks">{quantity}</InvoicedQuantity>'
            f"<LineExtensionAmount>{total}</LineExtensionAmount>"
            f"<LineExtensionAmountTaxInclusive>{total + tax}</LineExtensionAmountTaxInclusive>"
            f"<LineExtensionTaxAmount>{tax}</LineExtensionTaxAmount><UnitPrice>{price}</UnitPrice>"
            f"<ClassifiedTaxCategory><Percent>{rate}</Percent>"
            f"<VATCalculationMethod>0</VATCalculationMethod></ClassifiedTaxCategory>"
            f"<Item><Description>{escape(name)}</Description></Item></InvoiceLine>"
        )
    vat = (base * rate / 100).quantize(CENT, ROUND_HALF_UP)
    total_with = base + vat
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Invoice xmlns="http://isdoc.cz/namespace/2013" version="6.0.2">'
        f"<DocumentType>1</DocumentType><ID>{escape(number)}</ID><UUID>{uuid.uuid4()}</UUID>"
        f"<IssueDate>{today}</IssueDate><TaxPointDate>{today}</TaxPointDate>"
        "<VATApplicable>true</VATApplicable><LocalCurrencyCode>CZK</LocalCurrencyCode>"
        "<CurrRate>1</CurrRate><RefCurrRate>1</RefCurrRate>"
        f"<AccountingSupplierParty>{_party(supplier['name'], supplier['ico'], supplier['city'])}"
        f"</AccountingSupplierParty><AccountingCustomerParty>"
        f"{_party(BUYER['name'], BUYER['ico'], BUYER['city'])}</AccountingCustomerParty>"
        f"<InvoiceLines>{''.join(rows)}</InvoiceLines>"
        f"<TaxTotal><TaxSubTotal><TaxableAmount>{base}</TaxableAmount><TaxAmount>{vat}</TaxAmount>"
        f"<TaxInclusiveAmount>{total_with}</TaxInclusiveAmount>"
        f"<TaxCategory><Percent>{rate}</Percent></TaxCategory></TaxSubTotal>"
        f"<TaxAmount>{vat}</TaxAmount></TaxTotal>"
        f"<LegalMonetaryTotal><TaxExclusiveAmount>{base}</TaxExclusiveAmount>"
        f"<TaxInclusiveAmount>{total_with}</TaxInclusiveAmount>"
        "<AlreadyClaimedTaxExclusiveAmount>0</AlreadyClaimedTaxExclusiveAmount>"
        f"<PayableRoundingAmount>0</PayableRoundingAmount><PayableAmount>{total_with}"
        "</PayableAmount></LegalMonetaryTotal>"
        f"<PaymentMeans><Payment><PaidAmount>{total_with}</PaidAmount>"
        "<PaymentMeansCode>42</PaymentMeansCode><Details>"
        f"<PaymentDueDate>{today + dt.timedelta(days=14)}</PaymentDueDate>"
        "<ID>123456789</ID><BankCode>0100</BankCode>"
        f"<VariableSymbol>{''.join(c for c in number if c.isdigit())[-10:]}</VariableSymbol>"
        "</Details></Payment></PaymentMeans></Invoice>"
    )
    return xml.encode()


def result_total(path: Path) -> str:
    """The payable amount written in an ISDOC file made by :func:`isdoc`."""
    text = path.read_text(encoding="utf-8")
    return text.split("<PayableAmount>", 1)[1].split("<", 1)[0]


def _add_and_start(app: Any, path: Path) -> tuple[str, bool]:
    taken = take_in(app, path, actor="cli")
    assert taken.workflow_id is not None  # start_flow is on
    return taken.workflow_id, taken.result.new_file


def _pending(app: Any, workflow_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.sessions() as session:
            for decision in runs.pending_decisions(session):
                if decision.workflow_id == workflow_id:
                    return decision
        time.sleep(0.1)
    raise SpojkaError(f"{workflow_id} did not ask for a decision within {timeout:.0f}s")


def _settled(app: Any, workflow_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The run's result; a clear error as soon as it waits for a person instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            return dict(engine.wait_result(app.settings, workflow_id, timeout=1))
        with app.sessions() as session:
            for decision in runs.pending_decisions(session):
                if decision.workflow_id == workflow_id:
                    raise SpojkaError(f"{workflow_id} waits for a person: {decision.summary}")
    raise SpojkaError(f"{workflow_id} did not finish within {timeout:.0f}s")


def _posted(erp: TrytonClient, number: str) -> list[dict[str, Any]]:
    return erp.search_read(
        "account.invoice",
        [("type", "=", "in"), ("reference", "=", number)],
        ["number", "state", "total_amount"],
    )


def roi_lines() -> list[str]:
    """The ROI reference example, as two lines."""
    result = compute_roi(
        RoiInputs(
            volume=Decimal(10000),
            minutes=Decimal(5),
            automation=Decimal("0.8"),
            rate=Decimal(400),
            operation_cost=Decimal(50000),
            exceptions_cost=Decimal(40000),
            licence_cost=Decimal(10000),
            investment=Decimal(400000),
        )
    )

    def kc(value: Decimal) -> str:
        return f"{value:,.0f} Kč".replace(",", " ")

    payback = "none" if result.payback_months is None else f"{result.payback_months:.1f} months"
    return [
        "  ROI: 10 000 invoices/month × 5 min, 80 % automated, 400 Kč/h; costs 50 000 + 40 000 "
        "+ 10 000 Kč/month, investment 400 000 Kč",
        f"       → {result.manual_hours} h manual, {result.saved_hours} h saved, gross "
        f"{kc(result.gross_benefit)}, net {kc(result.net_benefit)}/month, payback {payback}",
    ]


def ap_chapter(ctx: Any) -> None:
    """Three supplier invoices: posted automatically, a duplicate, an exception released."""
    app, say = ctx.app, ctx.console.print
    say("  starting Tryton from its snapshot …")
    started = time.monotonic()
    server = tryton.start()
    erp = TrytonClient(server.url, server.database, server.user, server.password)
    started_runs: list[str] = []
    try:
        local.configure_tryton(app, server)
        rng = random.Random(secrets.randbits(32))
        supplier = {"name": f"Dodavatel IT {rng.randint(100, 999)} s.r.o.", "ico": _ico(rng)}
        supplier["city"] = "Brno"
        ordered: list[Line] = [("Konzultace", 4, "1500.00"), ("Školení uživatelů", 2, "1200.00")]
        po = create_supplier_with_order(
            erp,
            name=supplier["name"],
            ico=supplier["ico"],
            dic=f"CZ{supplier['ico']}",
            street="Hlavní 1",
            city=supplier["city"],
            lines=ordered,
        ).number
        say(
            f"  Tryton ready in {time.monotonic() - started:.1f} s; purchase order no. {po} "
            f"from {supplier['name']} (IČO {supplier['ico']})"
        )
        folder = app.settings.data_dir / "demo-invoices"
        folder.mkdir(parents=True, exist_ok=True)
        tag = secrets.token_hex(2).upper()

        # 1. Matches its order, under the auto-approval limit: posted without a person.
        first_no = f"FP-{tag}-001"
        first = folder / f"{first_no}.isdoc"
        first.write_bytes(isdoc(first_no, supplier, ordered))
        wid, _ = _add_and_start(app, first)
        started_runs.append(wid)
        result = _settled(app, wid)
        if result.get("outcome") != "automated":
            raise SpojkaError(f"{first_no}: {result.get('outcome')} {result.get('error') or ''}")
        (posted,) = _posted(erp, first_no)
        say(
            f"  ✔ {first_no} ({posted['total_amount']} Kč) matched order {result.get('order')} → "
            f"posted automatically as Tryton invoice {posted['number']}"
        )

        # 2. The same file again: the same run, nothing new in Tryton.
        again, new_file = _add_and_start(app, first)
        count = len(_posted(erp, first_no))
        same = "stored once, the same run" if again == wid and not new_file else f"run {again}"
        say(f"  ↺ {first_no} again: duplicate recognised ({same}); {count} invoice in Tryton")

        # 3. Invoiced above the ordered price: an exception for an approver.
        third_no = f"FP-{tag}-002"
        third = folder / f"{third_no}.isdoc"
        third.write_bytes(isdoc(third_no, supplier, [("Konzultace", 4, "1650.00")]))
        wid3, _ = _add_and_start(app, third)
        started_runs.append(wid3)
        decision = _pending(app, wid3)
        reason = " — ".join(str(decision.summary).splitlines()[1:3]) or str(decision.summary)
        say(f"  ⏸ {third_no} ({result_total(third)} Kč) waits for {decision.required_role}:")
        say(f"      {reason[:160]}")
        signal_decision(
            decision_id=decision.id,
            decision="approve",
            actor="petra.svobodova",
            role=decision.required_role,
            reason="cena dohodnuta telefonicky",
            minutes_spent=3,
        )
        result3 = _settled(app, wid3)
        (posted3,) = _posted(erp, third_no) or [{"number": "?", "total_amount": "?"}]
        say(
            f"  ✔ {third_no} {result3.get('outcome')} by petra.svobodova (approver) → "
            f"posted as Tryton invoice {posted3['number']}"
        )
        say(f"  chapter took {time.monotonic() - started:.1f} s")
        ctx.facts["ap_posted"] = [posted["number"], posted3["number"]]
    except BaseException:
        # A run left waiting would hold up the runtime's shutdown: cancel this chapter's runs.
        with contextlib.suppress(Exception):
            for workflow_id in started_runs:
                engine.client(app.settings).cancel_workflow(workflow_id)
        raise
    finally:
        systems.reset_clients()
        erp.close()
        server.stop()
    for line in roi_lines():
        say(line)
