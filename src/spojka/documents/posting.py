"""Accounts payable against Tryton: the supplier's purchase orders, and the supplier invoice.

Reads ``purchase.purchase`` and its lines (received quantities from the stock moves' progress)
and creates ``account.invoice`` of type ``in`` whose lines point at the purchase lines
(``origin = purchase.line,<id>``), which is how Tryton links an invoice to its purchase.
Posting is idempotent: the invoice carries a ``[spojka:<key>]`` marker in its comment and a
retried post finds it instead of creating a second one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from spojka.connectors.tryton.client import TrytonClient
from spojka.core.errors import NotFoundError, ValidationError
from spojka.documents.matching import OrderLine, PurchaseOrder
from spojka.flows.systems import marker, unique_races

OPEN_PURCHASE_STATES = ("confirmed", "processing", "done")


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


class TrytonPayables:
    def __init__(self, client: TrytonClient) -> None:
        self.client = client

    # -- the supplier and its orders ------------------------------------------------------

    def supplier(self, *, ico: str | None, dic: str | None) -> int | None:
        for code in (ico, (dic or "").upper() or None):
            if not code:
                continue
            found = self.client.search_read(
                "party.identifier", [("code", "=", code)], ["party"], limit=1
            )
            if found:
                return int(found[0]["party"])
        return None

    def purchases(
        self, *, party: int, supplier_ico: str | None, supplier_dic: str | None
    ) -> list[PurchaseOrder]:
        rows = self.client.search_read(
            "purchase.purchase",
            [("party", "=", party), ("state", "in", list(OPEN_PURCHASE_STATES))],
            ["number", "reference", "lines", "currency.code"],
            order=[("id", "DESC")],
            limit=50,
        )
        orders = []
        for row in rows:
            line_rows = self.client.read(
                "purchase.line",
                row.get("lines") or [],
                [
                    "type",
                    "description",
                    "quantity",
                    "unit_price",
                    "product",
                    "product.code",
                    "product.rec_name",
                    "product.type",
                    "moves_progress",
                ],
            )
            lines = []
            for ln in line_rows:
                if ln.get("type") != "line":
                    continue
                product = ln.get("product.") or {}
                quantity = _dec(ln.get("quantity"))
                received = None
                if product.get("type") == "goods":
                    received = quantity * _dec(ln.get("moves_progress") or 0)
                lines.append(
                    OrderLine(
                        id=int(ln["id"]),
                        description=str(ln.get("description") or product.get("rec_name") or ""),
                        quantity=quantity,
                        unit_price=_dec(ln.get("unit_price")),
                        product_code=product.get("code") or None,
                        received_quantity=received,
                    )
                )
            orders.append(
                PurchaseOrder(
                    id=int(row["id"]),
                    number=row.get("number"),
                    reference=row.get("reference"),
                    supplier_ico=supplier_ico,
                    supplier_dic=supplier_dic,
                    lines=lines,
                    currency=(row.get("currency.") or {}).get("code"),
                )
            )
        return orders

    # -- the supplier invoice -------------------------------------------------------------

    def find_invoice(self, key: str) -> int | None:
        found = self.client.search(
            "account.invoice",
            [("type", "=", "in"), ("comment", "like", f"%{marker(key)}%")],
            limit=1,
        )
        return int(found[0]) if found else None

    def _tax(self, rate: Decimal | None) -> list[int]:
        if rate is None:
            return []
        found = self.client.search(
            "account.tax",
            [("type", "=", "percentage"), ("rate", "=", rate / 100), ("parent", "=", None)],
            limit=1,
        )
        if not found:
            raise ValidationError(f"Tryton: no {rate} % VAT tax is set up / sazba DPH chybí")
        return [int(found[0])]

    def _expense_account(self, product: int | None) -> int:
        if product is not None:
            (row,) = self.client.read("product.product", [product], ["template.account_category"])
            category = (row.get("template.") or {}).get("account_category")
            if category:
                (cat,) = self.client.read("product.category", [category], ["account_expense"])
                if cat.get("account_expense"):
                    return int(cat["account_expense"])
        (conf,) = self.client.read(
            "account.configuration", [1], ["default_category_account_expense"]
        )
        if conf.get("default_category_account_expense"):
            return int(conf["default_category_account_expense"])
        found = self.client.search(
            "account.account",
            [("type.expense", "=", True), ("closed", "!=", True)],
            limit=1,
        )
        if not found:
            raise NotFoundError("Tryton: no expense account to book the invoice lines on")
        return int(found[0])

    def _payable_account(self, party: int) -> int | None:
        (row,) = self.client.read("party.party", [party], ["account_payable"])
        if row.get("account_payable"):
            return int(row["account_payable"])
        (conf,) = self.client.read("account.configuration", [1], ["default_account_payable"])
        found = conf.get("default_account_payable")
        return int(found) if found else None

    def create_supplier_invoice(
        self,
        *,
        key: str,
        party: int,
        invoice: dict[str, Any],
        pairs: dict[int, int],
        purchase_number: str | None,
    ) -> int:
        """The supplier invoice draft for a canonical invoice (``extract`` output shape)."""
        found = self.find_invoice(key)
        if found is not None:
            return found
        currency = str(invoice.get("currency") or "CZK").upper()
        currencies = self.client.search("currency.currency", [("code", "=", currency)], limit=1)
        if not currencies:
            raise ValidationError(f"Tryton: currency {currency} is not set up")
        purchase_lines: dict[int, dict[str, Any]] = {}
        if pairs:
            for row in self.client.read(
                "purchase.line", sorted(set(pairs.values())), ["product", "unit"]
            ):
                purchase_lines[int(row["id"])] = row
        lines = []
        for index, ln in enumerate(invoice.get("lines") or []):
            quantity = _dec(ln.get("quantity") if ln.get("quantity") is not None else 1)
            price = ln.get("unit_price")
            if price is None:
                price = _dec(ln.get("total")) / quantity if quantity else _dec(ln.get("total"))
            rate = ln.get("vat_rate")
            values: dict[str, Any] = {
                "type": "line",
                "description": str(ln.get("description") or "Položka")[:250],
                "quantity": float(quantity),
                "unit_price": _dec(price),
                "company": self.client.company_id,
                "currency": currencies[0],
                "taxes": [["add", self._tax(None if rate is None else _dec(rate))]],
            }
            purchase_line = pairs.get(index)
            product = None
            if purchase_line is not None:
                origin = purchase_lines.get(purchase_line) or {}
                product = origin.get("product")
                values["origin"] = f"purchase.line,{purchase_line}"
                if product:
                    values["product"] = product
                    values["unit"] = origin.get("unit")
            values["account"] = self._expense_account(int(product) if product else None)
            lines.append(values)
        payable = self._payable_account(party)
        addresses = self.client.search("party.address", [("party", "=", party)], limit=1)
        journals = self.client.search("account.journal", [("type", "=", "expense")], limit=1)
        issue = invoice.get("issue_date")
        values = {
            "type": "in",
            "party": party,
            "company": self.client.company_id,
            "currency": currencies[0],
            "account": payable,
            "invoice_date": dt.date.fromisoformat(issue) if issue else None,
            "reference": invoice.get("number"),
            "description": (
                f"Faktura {invoice.get('number')}"
                + (f" k objednávce {purchase_number}" if purchase_number else "")
            )[:200],
            "comment": f"Přijatá faktura {invoice.get('number')}\n{marker(key)}",
            "invoice_address": addresses[0] if addresses else None,
            "journal": journals[0] if journals else None,
            "lines": [["create", lines]],
        }
        with unique_races():
            (invoice_id,) = self.client.create(
                "account.invoice", [{k: v for k, v in values.items() if v is not None}]
            )
        return int(invoice_id)

    def post(self, invoice_id: int) -> dict[str, Any]:
        with unique_races():
            (row,) = self.client.read("account.invoice", [invoice_id], ["state"])
            if row["state"] == "draft":
                self.client.button("account.invoice", "validate_invoice", [invoice_id])
                row["state"] = "validated"
            if row["state"] == "validated":
                self.client.button("account.invoice", "post", [invoice_id])
        return self.invoice(invoice_id)

    def invoice(self, invoice_id: int) -> dict[str, Any]:
        rows = self.client.read(
            "account.invoice",
            [invoice_id],
            ["state", "number", "reference", "total_amount", "untaxed_amount", "tax_amount"],
        )
        if not rows:
            raise NotFoundError(f"Tryton supplier invoice {invoice_id} does not exist")
        row = rows[0]
        return {
            "id": invoice_id,
            "state": row.get("state"),
            "number": row.get("number"),
            "reference": row.get("reference"),
            "total": str(row.get("total_amount")),
            "untaxed": str(row.get("untaxed_amount")),
            "tax": str(row.get("tax_amount")),
        }


@dataclass(frozen=True)
class SupplierOrder:
    """A supplier party created in Tryton and its confirmed purchase order."""

    party: int
    purchase: int
    number: str
    state: str


def create_supplier_with_order(
    client: TrytonClient,
    *,
    name: str,
    ico: str,
    dic: str,
    street: str,
    city: str,
    lines: Iterable[tuple[str, int | Decimal, str | Decimal]],
    rate: Decimal = Decimal(21),
) -> SupplierOrder:
    """Create a supplier (IČO, DIČ, address) with a confirmed purchase of ``lines`` in Tryton.

    ``lines`` are (product name, quantity, unit price) of products that exist in Tryton. What
    the demo, the AP tests and the benchmark start from: an invoice from this supplier then
    has an open order to match.
    """
    (party,) = client.create(
        "party.party",
        [
            {
                "name": name,
                "identifiers": [
                    ["create", [{"type": None, "code": ico}, {"type": None, "code": dic}]]
                ],
                "addresses": [["create", [{"street": street, "city": city}]]],
            }
        ],
    )
    (address,) = client.search("party.address", [("party", "=", party)], limit=1)
    (czk,) = client.search("currency.currency", [("code", "=", "CZK")], limit=1)
    taxes = TrytonPayables(client)._tax(rate)
    values = []
    for product_name, quantity, price in lines:
        (product,) = client.search_read(
            "product.product", [("name", "=", product_name)], ["default_uom"], limit=1
        )
        values.append(
            {
                "type": "line",
                "product": product["id"],
                "description": product_name,
                "quantity": float(quantity),
                "unit": product["default_uom"],
                "unit_price": Decimal(price),
                "taxes": [["add", taxes]],
            }
        )
    (purchase,) = client.create(
        "purchase.purchase",
        [
            {
                "party": party,
                "company": client.company_id,
                "currency": czk,
                "invoice_address": address,
                "invoice_method": "manual",
                "purchase_date": dt.date.today(),
                "lines": [["create", values]],
            }
        ],
    )
    client.button("purchase.purchase", "quote", [purchase])
    client.button("purchase.purchase", "confirm", [purchase])
    (row,) = client.read("purchase.purchase", [purchase], ["number", "state"])
    return SupplierOrder(
        party=int(party), purchase=int(purchase), number=str(row["number"]), state=str(row["state"])
    )
