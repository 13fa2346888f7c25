"""The handoff story on local real systems: BottleCRM, Tryton, Redmine and a mail server.

Used by the integration tests, ``make demo`` and ``bench/flows_handoff.py``: starts the
systems from their golden snapshots (the first run installs them: minutes), points the flows
configuration at them, serves Spojka's API (with the in-process flow worker) on a free port,
and registers that API as BottleCRM's webhook target.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from spojka.bootstrap import Spojka
from spojka.connectors.bottlecrm.client import BottleCRMClient
from spojka.connectors.redmine.client import RedmineClient
from spojka.connectors.tryton.client import TrytonClient
from spojka.flows import config as flows_config
from spojka.flows import systems
from spojka.localsystems import bottlecrm, redmine, tryton
from spojka.localsystems.common import free_port, wait_for_http
from spojka.localsystems.mail import LocalMailServer
from spojka.runtime import engine


@dataclass
class LocalStack:
    app: Spojka
    crm: bottlecrm.BottleCRMInstance
    pm: redmine.RedmineServer
    erp: tryton.TrytonServer
    mail: LocalMailServer
    api_url: str
    webhook_secret: str
    timings: dict[str, float] = field(default_factory=dict)
    _server: Any = None
    _thread: threading.Thread | None = None

    def crm_client(self) -> BottleCRMClient:
        return BottleCRMClient(self.crm.url, self.crm.personal_token)

    def redmine_client(self) -> RedmineClient:
        return RedmineClient(self.pm.url, self.pm.api_key)

    def tryton_client(self) -> TrytonClient:
        return TrytonClient(self.erp.url, self.erp.database, self.erp.user, self.erp.password)


def _tryton_ref(erp: tryton.TrytonServer) -> dict[str, Any]:
    return {
        "url": erp.url,
        "database": erp.database,
        "user": erp.user,
        "password": "db:tryton-password",
    }


def configure_tryton(app: Spojka, erp: tryton.TrytonServer) -> None:
    """Store Tryton's password as a secret and write ``flows.yaml`` pointing at Tryton alone.

    Enough for the supplier-invoice flow (demo chapter, tests, benchmark), which needs no
    other system.
    """
    with app.sessions() as session:
        app.secrets.put(session, "tryton-password", erp.password)
        session.commit()
    flows_config.write(app.settings.data_dir, {"systems": {"tryton": _tryton_ref(erp)}})
    systems.reset_clients()


def configure(
    app: Spojka,
    *,
    crm: bottlecrm.BottleCRMInstance,
    pm: redmine.RedmineServer,
    erp: tryton.TrytonServer,
    mail: LocalMailServer,
    webhook_secret: str,
    crm_side: str = "bottlecrm",
    overrides: dict[str, Any] | None = None,
) -> None:
    """Store the credentials as secrets and write ``flows.yaml`` pointing at the systems."""
    with app.sessions() as session:
        app.secrets.put(session, "bottlecrm-token", crm.personal_token)
        app.secrets.put(session, "bottlecrm-webhook", webhook_secret)
        app.secrets.put(session, "redmine-key", pm.api_key)
        app.secrets.put(session, "tryton-password", erp.password)
        session.commit()
    override: dict[str, Any] = {
        "systems": {
            "crm": crm_side,
            "bottlecrm": {
                "url": crm.url,
                "token": "db:bottlecrm-token",
                "webhook_secret": "db:bottlecrm-webhook",
            },
            "redmine": {"url": pm.url, "token": "db:redmine-key"},
            "tryton": _tryton_ref(erp),
            "smtp": {"host": "127.0.0.1", "port": mail.smtp_port},
        }
    }
    if overrides:
        override = flows_config.merge(override, overrides)
    os.environ.pop(flows_config.CONFIG_ENV, None)
    flows_config.write(app.settings.data_dir, override)
    systems.reset_clients()


def serve_api(app: Spojka) -> tuple[str, Any, threading.Thread]:
    """Spojka's API with the in-process flow worker, under uvicorn in a thread."""
    from spojka.api.app import create_app

    # The runtime is launched here rather than by the app's lifespan (with_runtime): a runtime
    # already running in this process (tests, the demo) is reused, and stopping this server
    # does not shut it down — local_stack decides that.
    engine.launch(app.settings, executor_id="flows-local")  # no-op when already running
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(app, with_runtime=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, name="spojka-api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/ready", timeout=60)
    return url, server, thread


def start_systems() -> dict[str, Any]:
    """BottleCRM, Redmine, Tryton and mail, started in parallel; keys crm, pm, erp, mail and
    their start times (``crm_s`` …). Raises the first failure after stopping the others."""
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(name: str, fn: Any) -> None:
        t0 = time.monotonic()
        try:
            results[name] = fn()
        except BaseException as exc:
            errors.append(exc)
        results[f"{name}_s"] = round(time.monotonic() - t0, 1)

    threads = [
        threading.Thread(target=run, args=(n, f))
        for n, f in (
            ("crm", bottlecrm.start),
            ("pm", redmine.start),
            ("erp", tryton.start),
            ("mail", lambda: LocalMailServer().start()),
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        stop_systems(results)
        raise errors[0]
    return results


def stop_systems(results: dict[str, Any]) -> None:
    for name in ("crm", "pm", "erp", "mail"):
        system = results.get(name)
        if system is not None:
            # Stopping is best effort; the run folders are temporary.
            with contextlib.suppress(Exception):
                system.stop()


@contextmanager
def local_stack(app: Spojka, *, crm_side: str = "bottlecrm") -> Iterator[LocalStack]:
    """Start everything (systems in parallel threads), yield, and stop everything."""
    started = time.monotonic()
    results = start_systems()
    try:
        secret = "whsec_" + secrets.token_hex(16)
        configure(
            app,
            crm=results["crm"],
            pm=results["pm"],
            erp=results["erp"],
            mail=results["mail"],
            webhook_secret=secret,
            crm_side=crm_side,
        )
        runtime_was_running = engine.is_launched()
        api_url, server, thread = serve_api(app)
        # BottleCRM generates its own secret per endpoint: store that one.
        _id, real_secret = results["crm"].register_webhook(
            f"{api_url}/api/v1/webhooks/flows/bottlecrm", ["deal.won"], description="spojka flows"
        )
        with app.sessions() as session:
            app.secrets.put(session, "bottlecrm-webhook", real_secret)
            session.commit()
        stack = LocalStack(
            app=app,
            crm=results["crm"],
            pm=results["pm"],
            erp=results["erp"],
            mail=results["mail"],
            api_url=api_url,
            webhook_secret=real_secret,
            timings={
                "systems_start_s": round(time.monotonic() - started, 1),
                **{k: v for k, v in results.items() if k.endswith("_s")},
            },
            _server=server,
            _thread=thread,
        )
        yield stack
    finally:
        server_obj = locals().get("server")
        if server_obj is not None:
            server_obj.should_exit = True
            api_thread = locals().get("thread")
            if isinstance(api_thread, threading.Thread):
                api_thread.join(timeout=15)
        systems.reset_clients()
        if not locals().get("runtime_was_running", True):
            engine.cancel_open_runs(app.settings)
            engine.shutdown()
        stop_systems(results)


def czech_deal(
    client: BottleCRMClient,
    *,
    suffix: str,
    ico: str = "25596641",
    dic: str = "CZ25596641",
    amount: str = "240000",
    currency: str = "EUR",
    start: str = "2027-01-04",
    with_contact: bool = True,
    name: str = "Implementace ERP – Vysočina",
    product: str = "Implementace ERP",
) -> str:
    """A realistic open deal in BottleCRM (account with IČO/DIČ in its notes, contact, lines)."""
    account = client.create(
        "accounts",
        {
            "name": f"Strojírny Vysočina s.r.o. {suffix}",
            "city": "Jihlava",
            "description": f"IČO: {ico}\nDIČ: {dic}\nOdběratel strojních dílů",
        },
    )
    contacts: list[str] = []
    if with_contact:
        contacts.append(
            client.create(
                "contacts",
                {
                    "first_name": "Zdeněk",
                    "last_name": "Šťastný",
                    "email": f"zdenek.stastny.{suffix}@vysocina-stroje.cz",
                    "account": account,
                },
            )
        )
    deal = client.create(
        "opportunities",
        {
            "name": f"{name} {suffix}",
            "account": account,
            "amount": amount,
            "currency": currency,
            "stage": "PROSPECTING",
            "probability": 60,
            "closed_on": "2026-12-31",
            "opportunity_type": "NEW_BUSINESS",
            "description": f"Zahájení: {start}",
            "contacts": contacts,
        },
    )
    client.post(
        f"/api/opportunities/{deal}/line-items/",
        {"name": product, "quantity": "120", "unit_price": "2000"},
    )
    return deal


def win(client: BottleCRMClient, deal_id: str) -> None:
    client.update("opportunities", deal_id, {"stage": "CLOSED_WON"})


def tryton_won_opportunity(
    client: TrytonClient,
    *,
    suffix: str,
    ico: str = "26185610",
    dic: str = "CZ26185610",
    start: str = "2027-02-01",
) -> int:
    """A won opportunity in Tryton's own CRM: lead → opportunity → converted sale → confirmed."""
    import datetime as dt
    from decimal import Decimal

    (party,) = client.create(
        "party.party",
        [
            {
                "name": f"Pivovar Hradec s.r.o. {suffix}",
                "identifiers": [
                    ["create", [{"type": None, "code": ico}, {"type": "cz_vat", "code": dic}]]
                ],
                "contact_mechanisms": [
                    [
                        "create",
                        [
                            {
                                "type": "email",
                                "value": f"jitka.mala.{suffix}@pivovar-hradec.cz",
                                "name": "Jitka Malá",
                            }
                        ],
                    ]
                ],
                "addresses": [["create", [{"city": "Hradec Králové"}]]],
            }
        ],
    )
    (contact,) = client.search("party.contact_mechanism", [("party", "=", party)], limit=1)
    (eur,) = client.search("currency.currency", [("code", "=", "EUR")], limit=1)
    (product,) = client.search("product.product", [("name", "=", "Implementace ERP")], limit=1)
    (prod,) = client.read("product.product", [product], ["default_uom"])
    (opp,) = client.create(
        "sale.opportunity",
        [
            {
                "party": party,
                "contact": contact,
                "company": client.company_id,
                "currency": eur,
                "amount": Decimal("150000"),
                "start_date": dt.date.fromisoformat(start),
                "description": f"Implementace ERP – pivovar {suffix}",
                "employee": client.employee_id,
                "lines": [
                    [
                        "create",
                        [{"product": product, "quantity": 100.0, "unit": prod["default_uom"]}],
                    ]
                ],
            }
        ],
    )
    client.button("sale.opportunity", "opportunity", [opp])
    client.button("sale.opportunity", "convert", [opp])
    (row,) = client.read("sale.opportunity", [opp], ["sales"])
    for sale in row["sales"]:
        (line_ids,) = [client.read("sale.sale", [sale], ["lines"])[0]["lines"]]
        client.write("sale.line", line_ids, {"unit_price": Decimal("1500")})
        client.button("sale.sale", "quote", [sale])
        client.button("sale.sale", "confirm", [sale])
    return int(opp)


def pay_invoice(client: TrytonClient, invoice_id: int, amount: Any = None) -> dict[str, Any]:
    """A customer's payment recorded in Tryton through its Pay wizard, as an accountant would:
    the whole amount still to pay, or ``amount`` as a partial payment (by bank transfer)."""
    methods = client.search("account.invoice.payment.method", [("name", "=", "Bankovní převod")])
    if not methods:
        (journal,) = client.search("account.journal", [("code", "=", "CASH")], limit=1)
        (bank,) = client.search(
            "account.account", [("code", "=", "1.1.1"), ("company", "=", client.company_id)]
        )
        methods = client.create(
            "account.invoice.payment.method",
            [
                {
                    "name": "Bankovní převod",
                    "company": client.company_id,
                    "journal": journal,
                    "debit_account": bank,
                    "credit_account": bank,
                }
            ],
        )
    context = {
        **client.context,
        "active_id": invoice_id,
        "active_ids": [invoice_id],
        "active_model": "account.invoice",
    }
    session, start, _end = client.call("wizard.account.invoice.pay.create", context)
    try:
        opened = client.call("wizard.account.invoice.pay.execute", session, {}, start, context)
        form = {k: v for k, v in opened["view"]["defaults"].items() if not k.endswith(".")}
        form.update(payment_method=methods[0], description="Platba převodem")
        if amount is not None:
            form["amount"] = amount
        data: dict[str, Any] = {start: form}
        answer = client.call("wizard.account.invoice.pay.execute", session, data, "choice", context)
        if answer.get("view"):  # less than what is due: keep the rest open (partial)
            ask = {k: v for k, v in answer["view"]["defaults"].items() if not k.endswith(".")}
            data["ask"] = {**ask, "type": "partial"}
            client.call("wizard.account.invoice.pay.execute", session, data, "pay", context)
    finally:
        client.call("wizard.account.invoice.pay.delete", session, context)
    (row,) = client.read("account.invoice", [invoice_id], ["state", "amount_to_pay"])
    return dict(row)
