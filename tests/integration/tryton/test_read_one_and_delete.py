"""TrytonConnector's read by id and delete, against a real trytond: ``read_one`` gives
exactly the record a listing gives, ``delete`` removes a record once (a repeat is a
success) and what Tryton refuses to delete is a PermanentError carrying its reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spojka.connectors.tryton.connector import TrytonConnector
from spojka.core.errors import AuthError, PermanentError, TransientError
from spojka.localsystems.common import free_port
from spojka.localsystems.tryton import TrytonServer
from tests.support import read_all

pytestmark = pytest.mark.tryton


def _config(server: TrytonServer, **extra: object) -> dict[str, object]:
    return {
        "url": server.url,
        "database": server.database,
        "user": server.user,
        "password": server.password,
        "page_size": 20,
        **extra,
    }


@pytest.fixture
def connector(tryton_server: TrytonServer) -> Iterator[TrytonConnector]:
    conn = TrytonConnector(_config(tryton_server))
    try:
        yield conn
    finally:
        conn.close()


def _write(conn: TrytonConnector, stream: str, record: dict[str, object], key: str) -> str:
    return conn.write(
        conn.stream(stream), record, external_id=None, idempotency_key=key
    ).external_id


def _product(conn: TrytonConnector, name: str) -> str:
    return next(str(p["id"]) for p in read_all(conn, conn.stream("products")) if p["name"] == name)


def test_read_one_gives_the_record_a_listing_gives_for_every_stream(
    connector: TrytonConnector,
) -> None:
    party = _write(
        connector,
        "parties",
        {"name": "Vodárny Kroměříž a.s.", "ico": "27074358", "email": "info@vodarny.cz"},
        "r-party",
    )
    _write(
        connector,
        "contacts",
        {"party_id": party, "name": "Petra Malá", "email": "petra.mala@vodarny.cz"},
        "r-contact",
    )
    _write(connector, "opportunities", {"name": "Dodávka čerpadel", "party_id": party}, "r-opp")
    line = {"product_id": _product(connector, "Konzultace"), "quantity": "2", "unit_price": "1500"}
    _write(connector, "sales", {"party_id": party, "lines": [line]}, "r-sale")
    _write(connector, "purchases", {"party_id": party, "lines": [line]}, "r-purchase")
    _write(
        connector,
        "invoices",
        {"direction": "in", "party_id": party, "issued": "2026-11-10", "lines": [line]},
        "r-invoice",
    )
    project = _write(connector, "projects", {"name": "Rekonstrukce čerpací stanice"}, "r-project")
    task = _write(connector, "tasks", {"name": "Výběr čerpadel", "project_id": project}, "r-task")
    _write(
        connector, "timesheet_lines", {"task_id": task, "hours": "2", "date": "2026-11-18"}, "r-ts"
    )

    for stream in connector.streams():
        listed = read_all(connector, stream)
        assert listed, f"nothing listed in {stream.name}"
        for record in listed:
            assert connector.read_one(stream, str(record["id"])) == record, stream.name

    # a project is not a task, and ids that do not exist are None, not an error
    assert connector.read_one(connector.stream("tasks"), project) is None
    assert connector.read_one(connector.stream("parties"), "999999") is None
    assert connector.read_one(connector.stream("parties"), "abc") is None


def test_a_deleted_record_is_gone_and_a_second_delete_changes_nothing(
    connector: TrytonConnector,
) -> None:
    party = _write(connector, "parties", {"name": "Zrušená firma s.r.o."}, "d-party")
    contact = _write(
        connector,
        "contacts",
        {"party_id": party, "name": "Jan Dočasný", "phone": "+420 601 111 222"},
        "d-contact",
    )
    project = _write(connector, "projects", {"name": "Zrušený projekt"}, "d-project")
    task = _write(connector, "tasks", {"name": "Zrušený úkol", "project_id": project}, "d-task")
    lead = _write(
        connector, "opportunities", {"name": "Zrušená poptávka", "party_id": party}, "d-opp"
    )

    # children before parents: each of them goes on the first delete, and only once
    for stream_name, record_id in (
        ("contacts", contact),
        ("tasks", task),
        ("projects", project),
        ("opportunities", lead),
        ("parties", party),
    ):
        stream = connector.stream(stream_name)
        first = connector.delete(stream, record_id, idempotency_key=f"del-{stream_name}")
        assert not first.already_gone, stream_name
        assert connector.read_one(stream, record_id) is None, stream_name
        again = connector.delete(stream, record_id, idempotency_key=f"del-{stream_name}")
        assert again.already_gone and again.external_id == record_id, stream_name


def test_what_tryton_refuses_to_delete_is_a_permanent_error_with_its_reason(
    connector: TrytonConnector,
) -> None:
    customer = _write(connector, "parties", {"name": "Odběratel v obchodu s.r.o."}, "x-party")
    line = {"product_id": _product(connector, "Konzultace"), "quantity": "1", "unit_price": "900"}
    _write(connector, "sales", {"party_id": customer, "lines": [line]}, "x-sale")
    with pytest.raises(PermanentError, match=f"party.party {customer} cannot be deleted: ") as used:
        connector.delete(connector.stream("parties"), customer, idempotency_key="x1")
    assert "Sale" in used.value.message  # Tryton names what still uses the party

    prospect = _write(connector, "parties", {"name": "Zájemce s poptávkou s.r.o."}, "x-prospect")
    _write(connector, "opportunities", {"name": "Poptávka", "party_id": prospect}, "x-lead")
    # Tryton itself would delete it and leave the opportunity without a party: refused
    with pytest.raises(PermanentError, match=r"still used by opportunities \(1\)"):
        connector.delete(connector.stream("parties"), prospect, idempotency_key="x0")
    assert connector.read_one(connector.stream("parties"), prospect) is not None

    project = _write(connector, "projects", {"name": "Projekt s úkoly"}, "x-project")
    task = _write(connector, "tasks", {"name": "Úkol s výkazem", "project_id": project}, "x-task")
    _write(
        connector, "timesheet_lines", {"task_id": task, "hours": "1", "date": "2026-11-18"}, "x-ts"
    )
    with pytest.raises(PermanentError, match=f"project.work {project} cannot be deleted: "):
        connector.delete(connector.stream("projects"), project, idempotency_key="x2")
    with pytest.raises(PermanentError, match=f"project.work {task} cannot be deleted: "):
        connector.delete(connector.stream("tasks"), task, idempotency_key="x3")

    opportunities = connector.stream("opportunities")
    won = _write(
        connector, "opportunities", {"name": "Vyhraný obchod", "party_id": customer}, "x-opp"
    )
    connector.perform(opportunities, won, "opportunity")
    connector.perform(opportunities, won, "convert")
    with pytest.raises(PermanentError, match="it is converted, and Tryton keeps"):
        connector.delete(opportunities, won, idempotency_key="x4")

    # nothing was deleted by any refusal
    assert connector.read_one(connector.stream("parties"), customer) is not None
    assert connector.read_one(connector.stream("projects"), project) is not None
    assert connector.read_one(connector.stream("tasks"), task) is not None
    assert connector.read_one(opportunities, won) is not None

    invoices = connector.stream("invoices")
    with pytest.raises(PermanentError, match="does not support deletes"):
        connector.delete(invoices, "1", idempotency_key="x5")
    assert [s.name for s in connector.streams() if s.supports_deletes] == [
        "parties",
        "contacts",
        "opportunities",
        "projects",
        "tasks",
    ]


def test_a_system_down_is_transient_and_a_bad_password_is_an_auth_error(
    tryton_server: TrytonServer,
) -> None:
    down = TrytonConnector(_config(tryton_server, url=f"http://127.0.0.1:{free_port()}/"))
    with pytest.raises(TransientError):
        down.read_one(down.stream("parties"), "1")
    with pytest.raises(TransientError):
        down.delete(down.stream("parties"), "1", idempotency_key="k")
    bad = TrytonConnector(_config(tryton_server, password="wrong"))
    with pytest.raises(AuthError):
        bad.read_one(bad.stream("parties"), "1")
    with pytest.raises(AuthError):
        bad.delete(bad.stream("parties"), "1", idempotency_key="k")
