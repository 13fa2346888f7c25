"""The Tryton JSON-RPC client against a real trytond: sessions, typed values, faults."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from spojka.connectors.tryton.client import TrytonClient
from spojka.core.errors import AuthError, ConfigError, PermanentError, TransientError
from spojka.localsystems.tryton import TrytonServer

pytestmark = pytest.mark.tryton


def _product_id(client: TrytonClient, name: str) -> int:
    (product_id,) = client.search("product.product", [("name", "=", name)])
    return product_id


def test_czech_and_slovak_diacritics_round_trip_unchanged(tryton_client: TrytonClient) -> None:
    names = ["Žluťoučký kůň pěl ďábelské ódy s.r.o.", "Ľubomír Šťastný – Kôň a ďateľ, Košice"]
    ids = tryton_client.create(
        "party.party",
        [{"name": n, "addresses": [["create", [{"city": "Čéské Budějovice"}]]]} for n in names],
    )
    rows = tryton_client.read("party.party", ids, ["name", "addresses.city"])
    assert [r["name"] for r in rows] == names
    assert {r["addresses."][0]["city"] for r in rows} == {"Čéské Budějovice"}


def test_typed_values_travel_both_ways_on_a_sale(tryton_client: TrytonClient) -> None:
    (customer,) = tryton_client.create("party.party", [{"name": "Pekárna U Vlčků"}])
    sale_date = dt.date(2026, 3, 15)
    (sale_id,) = tryton_client.create(
        "sale.sale",
        [
            {
                "party": customer,
                "sale_date": sale_date,
                "lines": [
                    [
                        "create",
                        [
                            {
                                "product": _product_id(tryton_client, "Konzultace"),
                                "quantity": 12.5,
                                "unit": tryton_client.search(
                                    "product.uom", [("name", "=", "Hour")]
                                )[0],
                                "unit_price": Decimal("1500.0000"),
                                "description": "Konzultace – zavedení ERP",
                                "taxes": [
                                    [
                                        "add",
                                        tryton_client.search(
                                            "account.tax", [("rate", "=", Decimal("0.21"))]
                                        ),
                                    ]
                                ],
                            }
                        ],
                    ]
                ],
            }
        ],
    )
    (sale,) = tryton_client.read(
        "sale.sale", [sale_id], ["sale_date", "untaxed_amount", "total_amount", "create_date"]
    )
    assert sale["sale_date"] == sale_date
    assert sale["untaxed_amount"] == Decimal("18750.00")
    # 21 % VAT from the product category of the golden company.
    assert sale["total_amount"] == Decimal("22687.50")
    assert isinstance(sale["create_date"], dt.datetime)


def test_timedelta_duration_round_trips_on_a_timesheet_line(tryton_client: TrytonClient) -> None:
    (work_id,) = tryton_client.create(
        "timesheet.work",
        [{"name": "Analýza požadavků", "company": tryton_client.company_id}],
    )
    duration = dt.timedelta(hours=2, minutes=45)
    (line_id,) = tryton_client.create(
        "timesheet.line",
        [
            {
                "work": work_id,
                "employee": tryton_client.employee_id,
                "company": tryton_client.company_id,
                "date": dt.date(2026, 3, 16),
                "duration": duration,
                "description": "Workshop s účetní",
            }
        ],
    )
    (line,) = tryton_client.read("timesheet.line", [line_id], ["duration", "description"])
    assert line["duration"] == duration
    assert line["description"] == "Workshop s účetní"


def test_wrong_password_is_an_auth_error(tryton_server: TrytonServer) -> None:
    client = TrytonClient(tryton_server.url, tryton_server.database, "admin", "špatné-heslo")
    with client, pytest.raises(AuthError, match="401 from Tryton: login or password rejected"):
        client.login()


def test_unknown_database_is_named_in_the_error(tryton_server: TrytonServer) -> None:
    client = TrytonClient(tryton_server.url, "x", "admin", tryton_server.password)
    with client, pytest.raises(ConfigError, match="Tryton database 'x' not found"):
        client.login()


def test_expired_session_is_renewed_transparently(
    tryton_client: TrytonClient, tryton_server: TrytonServer
) -> None:
    tryton_client.login()
    assert tryton_client.logins == 1
    tryton_server.expire_sessions()
    names = tryton_client.search_read("party.party", [("id", "=", 1)], ["name"])
    assert names == [{"id": 1, "name": "Spojka Demo s.r.o."}]
    assert tryton_client.logins == 2


def test_rejected_record_carries_trytons_message(tryton_client: TrytonClient) -> None:
    with pytest.raises(PermanentError) as caught:
        tryton_client.create(
            "party.party",
            [
                {
                    "name": "Neplatné DIČ a.s.",
                    "identifiers": [["create", [{"type": "cz_vat", "code": "CZ12345678"}]]],
                }
            ],
        )
    assert "CZ12345678" in caught.value.message
    assert caught.value.detail["tryton_error"] == "UserError"


def test_paging_by_id_neither_repeats_nor_skips_while_records_change(
    tryton_client: TrytonClient, tryton_server: TrytonServer
) -> None:
    created = tryton_client.create(
        "party.party", [{"name": f"Stránkování {i:02d}"} for i in range(25)]
    )
    domain = [("name", "like", "Stránkování%")]
    seen: list[int] = []
    with TrytonClient(
        tryton_server.url, tryton_server.database, tryton_server.user, tryton_server.password
    ) as other:
        for row in tryton_client.iter_search_read("party.party", domain, ["name"], page_size=10):
            seen.append(row["id"])
            if len(seen) == 10:
                # Someone deletes a record of a later page and adds a new one meanwhile.
                other.delete("party.party", [created[15]])
                other.create("party.party", [{"name": "Stránkování nový"}])
    assert len(seen) == len(set(seen)) == 25
    assert created[15] not in seen


def test_deleted_record_is_found_by_listing_ids(
    tryton_client: TrytonClient, tryton_server: TrytonServer
) -> None:
    ids = tryton_client.create("party.party", [{"name": "Smazaná firma"}, {"name": "Zůstává"}])
    before = set(tryton_client.search("party.party", []))
    with TrytonClient(
        tryton_server.url, tryton_server.database, tryton_server.user, tryton_server.password
    ) as other:
        other.delete("party.party", [ids[0]])
    after = set(tryton_client.search("party.party", []))
    assert before - after == {ids[0]}


def test_system_down_is_transient_and_work_resumes_after_restart(
    tryton_client: TrytonClient, tryton_server: TrytonServer
) -> None:
    tryton_client.login()
    tryton_server.kill()
    try:
        with pytest.raises(TransientError, match="unreachable"):
            tryton_client.search("party.party", [])
    finally:
        tryton_server.restart()
    assert 1 in tryton_client.search("party.party", [("id", "=", 1)])


def test_overloaded_or_hanging_server_is_transient() -> None:
    """A proxy in front of Tryton that answers 503 (with Retry-After) or hangs."""
    import http.server
    import threading

    release = threading.Event()

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.startswith("/hang/"):
                release.wait(5)
            self.send_response(503)
            self.send_header("Retry-After", "12")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with TrytonClient(url, "spojka", "admin", "heslo") as client:
            with pytest.raises(TransientError, match="503 from Tryton") as caught:
                client.login()
            assert caught.value.retry_after == 12.0
        hanging = TrytonClient(url, "hang", "admin", "heslo", timeout=0.5)
        with hanging, pytest.raises(TransientError, match="timed out"):
            hanging.login()
    finally:
        release.set()
        server.shutdown()
        server.server_close()
