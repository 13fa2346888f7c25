"""Payment status back from the ERP: an invoice Spojka issued is paid (or partly) in Tryton →
a note on the deal and the state in the project's ledger page.

Tryton has no webhooks: :func:`poll_payments` reads the invoices of every engagement's order
and queues ``flows.payment_status`` once per invoice and payment state
(``payment:tryton:<invoice>:<state>:<still to pay>``), so a re-poll changes nothing and a
second partial payment is a new, visible step.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from spojka.bootstrap import current
from spojka.flows import links, rules, systems
from spojka.flows.handoff import Envelope, _audit, guarded, retrying
from spojka.runtime import FlowResult, Outcome, flow, step

FLOW = "flows.payment_status"

STATE_TEXT = {
    "paid": "uhrazena / paid",
    "partial": "částečně uhrazena / partly paid",
}


def workflow_id(invoice_id: int | str, state: str, to_pay: str) -> str:
    return f"payment:tryton:{invoice_id}:{state}:{to_pay}"


def describe(invoice: dict[str, Any]) -> str:
    """The ledger's state cell: paid, or partly paid with what is left."""
    text = STATE_TEXT.get(invoice["payment"], invoice["payment"])
    if invoice["payment"] == "partial":
        text += f", zbývá {invoice['to_pay']} {invoice['currency']}"
    return text


@step(name="payment.write_back")
def write_back(deal: dict[str, str], project_id: str | None, invoice: dict[str, Any]) -> Envelope:
    cfg = systems.config()
    key = f"payment:{invoice['id']}:{invoice['payment']}:{invoice['to_pay']}"

    def run() -> bool:
        paid = Decimal(invoice["total"]) - Decimal(invoice["to_pay"])
        text = (
            f"💰 Faktura {invoice['number']} {STATE_TEXT.get(invoice['payment'])}: "
            f"uhrazeno {rules.money(paid)} z {invoice['total']} {invoice['currency']}"
            + (
                f", zbývá {invoice['to_pay']} {invoice['currency']}"
                if invoice["payment"] == "partial"
                else ""
            )
        )
        done = False
        for ref, deal_id in deal.items():
            done |= systems.crm(cfg, ref.split("/", 1)[0]).add_note(deal_id, text, key)
        if project_id:
            done |= systems.RedminePm(systems.redmine(cfg)).upsert_ledger(
                project_id,
                str(invoice["number"]),
                amount=f"{invoice['total']} {invoice['currency']}",
                due=str(invoice.get("due_date") or "–"),
                state=describe(invoice),
            )
        _audit(
            "billing.payment",
            "tryton_invoice",
            str(invoice["id"]),
            {"state": invoice["payment"], "to_pay": invoice["to_pay"]},
        )
        return done

    return guarded(run)


@flow(FLOW, subject_arg="subject")
def payment_status(
    deal: dict[str, str], project_id: str | None, invoice: dict[str, Any], subject: str = ""
) -> FlowResult:
    """One payment state of one invoice onto the deal and the project."""
    wrote = retrying(write_back, deal, project_id, invoice)
    if not wrote["ok"]:
        return FlowResult(Outcome.failed, detail={"error": wrote["error"]})
    return FlowResult(
        Outcome.automated,
        detail={
            "invoice": invoice["id"],
            "number": invoice["number"],
            "payment": invoice["payment"],
            "total": invoice["total"],
            "to_pay": invoice["to_pay"],
            "currency": invoice["currency"],
        },
    )


def poll_payments() -> list[str]:
    """Queue the payment state of every paid or partly paid invoice Spojka issued."""
    from spojka.runtime import engine

    app = current()
    cfg = systems.config()
    erp = systems.TrytonErp(systems.tryton(cfg))
    with app.engine.begin() as conn:
        engagements = links.engagements(conn)
    started = []
    for item in engagements:
        if "tryton/sale" not in item:
            continue
        number = erp.sale_facts(int(item["tryton/sale"]))["number"]
        if not number:
            continue
        invoices = erp.customer_invoices(
            [
                ("reference", "=", number),
                ("state", "in", ["posted", "paid"]),
                ("comment", "like", "%[spojka:%"),
            ]
        )
        deal = {k: v for k, v in item.items() if k.endswith("/opportunity")}
        for row in invoices:
            state = rules.payment_state(str(row["state"]), row["total"], row["to_pay"])
            if state not in STATE_TEXT:
                continue
            invoice = {
                "id": row["id"],
                "number": row["number"],
                "payment": state,
                "total": str(row["total"]),
                "to_pay": str(row["to_pay"]),
                "currency": row["currency"],
                "due_date": row["due_date"].isoformat() if row["due_date"] else None,
            }
            started.append(
                engine.enqueue(
                    app.settings,
                    FLOW,
                    deal,
                    item.get("redmine/project"),
                    invoice,
                    subject=f"{row['number']}: {state}"[:200],
                    workflow_id=workflow_id(row["id"], state, invoice["to_pay"]),
                )
            )
    return started
