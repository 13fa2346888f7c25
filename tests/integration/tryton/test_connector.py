"""TrytonConnector against a real trytond: streams, change capture, writes and workflows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from spojka.connectors.registry import create
from spojka.connectors.tryton.connector import TrytonConnector
from spojka.core.errors import PermanentError
from spojka.localsystems.tryton import TrytonServer
from tests.support import read_all

pytestmark = pytest.mark.tryton


@pytest.fixture
def connector(tryton_server: TrytonServer) -> Iterator[TrytonConnector]:
    conn = create(
        "tryton",
        {
            "url": tryton_server.url,
            "database": tryton_server.database,
            "user": tryton_server.user,
            "password": tryton_server.password,
            "page_size": 20,
        },
    )
    assert isinstance(conn, TrytonConnector)
    try:
        yield conn
    finally:
        conn.close()


def product_id(conn: TrytonConnector, name: str) -> str:
    products = read_all(conn, conn.stream("products"))
    return next(str(p["id"]) for p in products if p["name"] == name)


def test_health_names_a_missing_database(tryton_server: TrytonServer) -> None:
    good = TrytonConnector(
        {"url": tryton_server.url, "database": "spojka", "password": tryton_server.password}
    )
    bad = TrytonConnector(
        {"url": tryton_server.url, "database": "x", "password": tryton_server.password}
    )
    assert good.health().ok
    health = bad.health()
    assert not health.ok
    assert "Tryton database 'x' not found" in health.detail


def test_party_with_czech_ids_round_trips_and_retry_does_not_duplicate(
    connector: TrytonConnector,
) -> None:
    parties = connector.stream("parties")
    record = {
        "name": "Stavební huť Šťastný a syn, s.r.o.",
        "ico": "27074358",
        "dic": "CZ27074358",
        "email": "fakturace@stavebni-hut.cz",
        "street": "Dlouhá 5",
        "city": "Ústí nad Labem",
        "zip": "400 01",
        "country": "CZ",
    }
    first = connector.write(parties, record, external_id=None, idempotency_key="party-1")
    again = connector.write(parties, record, external_id=None, idempotency_key="party-1")
    assert first.created and not again.created
    assert again.external_id == first.external_id
    stored = connector.fetch(parties, first.external_id)
    assert stored is not None
    for field in ("name", "ico", "dic", "email", "street", "city", "zip", "country"):
        assert stored[field] == record[field]
    assert stored["modified_at"] == first.version


def test_invalid_vat_number_is_rejected_with_trytons_message(connector: TrytonConnector) -> None:
    with pytest.raises(PermanentError, match='Czech VAT Number "CZ12345678"'):
        connector.write(
            connector.stream("parties"),
            {"name": "Chybné DIČ s.r.o.", "dic": "CZ12345678"},
            external_id=None,
            idempotency_key="bad-dic",
        )


def test_change_capture_sees_updates_with_overlap_and_reconciliation_sees_deletes(
    connector: TrytonConnector,
) -> None:
    parties = connector.stream("parties")
    first = connector.write(
        parties, {"name": "Mlékárna Kunín"}, external_id=None, idempotency_key="poll-1"
    )
    second = connector.write(
        parties, {"name": "Pivovar Ořechov"}, external_id=None, idempotency_key="poll-2"
    )
    since = first.version
    assert since is not None
    seen = {r["id"]: r for r in read_all(connector, parties, since=since)}
    assert {int(first.external_id), int(second.external_id)} <= set(seen)

    updated = connector.write(
        parties,
        {"name": "Mlékárna Kunín a.s."},
        external_id=first.external_id,
        idempotency_key="poll-3",
    )
    assert updated.version is not None and updated.version >= since
    changed = {r["id"]: r for r in read_all(connector, parties, since=updated.version)}
    assert changed[int(first.external_id)]["name"] == "Mlékárna Kunín a.s."

    before = set(connector.list_ids(parties))
    connector.client.delete("party.party", [int(second.external_id)])
    assert before - set(connector.list_ids(parties)) == {second.external_id}


def test_opportunity_to_won_sale_to_posted_invoice(connector: TrytonConnector) -> None:
    customer = connector.write(
        connector.stream("parties"),
        {"name": "Nemocnice Třebíč, příspěvková organizace", "city": "Třebíč", "country": "CZ"},
        external_id=None,
        idempotency_key="flow-customer",
    )
    opportunities = connector.stream("opportunities")
    opp = connector.write(
        opportunities,
        {
            "name": "Zavedení ERP – Nemocnice Třebíč",
            "party_id": customer.external_id,
            "amount": "180000",
            "probability": 40,
            "end_date": "2026-12-31",
        },
        external_id=None,
        idempotency_key="flow-opp",
    )
    assert connector.perform(opportunities, opp.external_id, "opportunity") == "opportunity"
    assert connector.perform(opportunities, opp.external_id, "convert") == "converted"
    # A repeated click is a no-op, not an error.
    assert connector.perform(opportunities, opp.external_id, "convert") == "converted"

    sales = connector.stream("sales")
    (sale,) = [s for s in read_all(connector, sales) if s["opportunity_id"] == opp.external_id]
    assert sale["state"] == "draft"
    connector.client.create(
        "sale.line",
        [
            {
                "sale": sale["id"],
                **connector._line_values(
                    {
                        "product_id": product_id(connector, "Konzultace"),
                        "quantity": "120",
                        "unit_price": "1500",
                        "description": "Konzultace a nastavení",
                    },
                    purchase=False,
                ),
            }
        ],
    )
    assert connector.perform(sales, str(sale["id"]), "confirm") in ("confirmed", "processing")
    stored_opp = connector.fetch(opportunities, opp.external_id)
    assert stored_opp is not None and stored_opp["state"] == "won"

    invoices = connector.stream("invoices")
    connector.client.button("sale.sale", "process", [sale["id"]])
    (invoice,) = [
        i
        for i in read_all(connector, invoices)
        if i["direction"] == "out" and i["party_id"] == customer.external_id
    ]
    assert invoice["total_amount"] == "217800.00"
    assert invoice["vat_breakdown"] == [{"rate": "21", "base": "180000.00", "vat": "37800.00"}]
    connector.client.write(
        "account.invoice", [invoice["id"]], {"invoice_date": dt.date(2026, 11, 20)}
    )
    assert connector.perform(invoices, str(invoice["id"]), "post") == "posted"
    assert connector.perform(invoices, str(invoice["id"]), "post") == "posted"
    posted = connector.fetch(invoices, str(invoice["id"]))
    assert posted is not None
    assert posted["number"].startswith("FV2026-")
    assert posted["payment_state"] == "unpaid"
    assert posted["due"] == "2026-12-04"


def test_sale_written_with_lines_and_confirmed_in_one_idempotent_call(
    connector: TrytonConnector,
) -> None:
    customer = connector.write(
        connector.stream("parties"),
        {"name": "Knihkupectví U Černého koně"},
        external_id=None,
        idempotency_key="sale-customer",
    )
    sales = connector.stream("sales")
    order = {
        "party_id": customer.external_id,
        "date": "2026-11-02",
        "description": "Odborná literatura",
        "lines": [
            {
                "product_id": product_id(connector, "Odborná kniha: Účetnictví"),
                "quantity": "4",
                "unit_price": "450",
                "description": "Účetnictví pro pokročilé",
            }
        ],
        "_action": "confirm",
    }
    first = connector.write(sales, order, external_id=None, idempotency_key="sale-1")
    again = connector.write(sales, order, external_id=None, idempotency_key="sale-1")
    assert again.external_id == first.external_id and not again.created
    stored = connector.fetch(sales, first.external_id)
    assert stored is not None
    assert stored["state"] in ("confirmed", "processing")
    assert stored["total_amount"] == "2016.00"
    (line,) = stored["lines"]
    assert line["vat_rate"] == "12"
    assert line["description"] == "Účetnictví pro pokročilé"


def test_supplier_invoice_draft_with_taxes(connector: TrytonConnector) -> None:
    supplier = connector.write(
        connector.stream("parties"),
        {"name": "Dodavatel Žilina s.r.o.", "dic": "SK2020317068", "country": "SK"},
        external_id=None,
        idempotency_key="supplier-1",
    )
    invoices = connector.stream("invoices")
    result = connector.write(
        invoices,
        {
            "direction": "in",
            "party_id": supplier.external_id,
            "number": "2026-0457",
            "issued": "2026-11-10",
            "lines": [
                {
                    "product_id": product_id(connector, "Školení uživatelů"),
                    "quantity": "8",
                    "unit_price": "1000",
                    "description": "Školenie používateľov",
                }
            ],
        },
        external_id=None,
        idempotency_key="supplier-invoice-1",
    )
    stored = connector.fetch(invoices, result.external_id)
    assert stored is not None
    assert stored["state"] == "draft"
    assert stored["direction"] == "in"
    assert stored["reference"] == "2026-0457"
    assert Decimal(stored["total_amount"]) == Decimal("9680.00")
    assert stored["lines"][0]["description"] == "Školenie používateľov"


def test_project_task_and_timesheet(connector: TrytonConnector) -> None:
    project = connector.write(
        connector.stream("projects"),
        {"name": "Implementace – Nemocnice Třebíč"},
        external_id=None,
        idempotency_key="project-1",
    )
    task = connector.write(
        connector.stream("tasks"),
        {"name": "Migrace dat účetnictví", "project_id": project.external_id, "effort_hours": 16},
        external_id=None,
        idempotency_key="task-1",
    )
    timesheets = connector.stream("timesheet_lines")
    line = connector.write(
        timesheets,
        {
            "task_id": task.external_id,
            "hours": "3.5",
            "date": "2026-11-18",
            "description": "Převod číselníků",
        },
        external_id=None,
        idempotency_key="ts-1",
    )
    again = connector.write(
        timesheets,
        {
            "task_id": task.external_id,
            "hours": "3.5",
            "date": "2026-11-18",
            "description": "Převod číselníků",
        },
        external_id=None,
        idempotency_key="ts-1",
    )
    assert again.external_id == line.external_id
    stored = connector.fetch(timesheets, line.external_id)
    assert stored is not None
    assert stored["hours"] == "3.50"
    assert stored["task_id"] == task.external_id
    assert stored["description"] == "Převod číselníků"
    assert stored["person"] == "Jana Nováková"
    stored_task = connector.fetch(connector.stream("tasks"), task.external_id)
    assert stored_task is not None
    assert stored_task["project_id"] == project.external_id
    assert stored_task["effort_hours"] == "16.00"


def test_default_mapping_turns_every_real_record_into_a_valid_canonical_entity(
    connector: TrytonConnector,
) -> None:
    from pathlib import Path

    import spojka.connectors.tryton as package
    from spojka.sync.mapping import load_mapping

    mapping = load_mapping(Path(package.__file__).parent / "mappings" / "tryton.yaml")
    customer = connector.write(
        connector.stream("parties"),
        {"name": "Mapování s.r.o.", "ico": "27074358", "address": {"city": "Písek"}},
        external_id=None,
        idempotency_key="map-customer",
    )
    connector.write(
        connector.stream("sales"),
        {
            "party_id": customer.external_id,
            "lines": [
                {
                    "product_id": product_id(connector, "Konzultace"),
                    "quantity": "2",
                    "unit_price": "1500",
                }
            ],
            "_action": "quote",
        },
        external_id=None,
        idempotency_key="map-sale",
    )
    mapped: dict[str, list[dict[str, object]]] = {}
    for name, stream_mapping in mapping.streams.items():
        records = read_all(connector, connector.stream(name))
        mapped[name] = [stream_mapping.to_canonical(r) for r in records]
    account = next(a for a in mapped["parties"] if a["name"] == "Mapování s.r.o.")
    assert account["ico"] == "27074358"
    assert account["address"] == {"city": "Písek", "country": "CZ"}
    order = next(o for o in mapped["sales"] if o["account_id"] == customer.external_id)
    assert order["lines"][0]["description"] == "Konzultace"
    assert order["lines"][0]["vat_rate"] == "21"
    assert {p["name"] for p in mapped["products"]} >= {"Konzultace", "Implementace ERP"}
