"""Tryton 8.2 as a Spojka connector: ERP, CRM (sale_opportunity) and projects/timesheets.

Config::

    url: http://127.0.0.1:8000/
    database: spojka
    user: admin
    password: "…"            # resolved from the secret store by the caller, never inline
    language: en               # optional
    page_size: 200             # optional

Reading: every stream pages by id (``id > last``) so a page never repeats or skips while
records change; change capture filters ``create_date``/``write_date`` ``>= since``. Tryton
stamps both at *transaction start*, so a long transaction can commit a row older than the
cursor: the engine's overlap window and (id, ``modified_at``) de-duplication cover that.
Deletes are invisible to polling: :meth:`list_ids` lets reconciliation find them.

Writing: creates carry the engine's idempotency key in a marker (``[spojka:KEY]`` in a
comment/description, or a typeless party identifier), so a retried create finds the record
the first attempt made. Workflow buttons (``quote``, ``confirm``, ``post``, …) are idempotent:
a record already at or past the button's target state is left alone.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from spojka.connectors.base import Connector, Health, Page, Record, Stream, WriteResult
from spojka.connectors.tryton.client import Domain, TrytonClient
from spojka.core.errors import ConfigError, PermanentError, SpojkaError, ValidationError

MARKER = re.compile(r"\s*\[spojka:([A-Za-z0-9_.:-]+)\]\s*$")
ICO = re.compile(r"^\d{8}$")
VAT_TYPES = ("cz_vat", "sk_vat", "eu_vat")

# Workflow buttons: the states a record may be in for the button to run, and the states
# that mean "already done" (so a repeated click is a no-op, not an error).
BUTTONS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "sale.sale": {
        "quote": (("draft",), ("quotation", "confirmed", "processing", "done")),
        "confirm": (("quotation",), ("confirmed", "processing", "done")),
        "process": (("confirmed",), ("processing", "done")),
        "cancel": (("draft", "quotation"), ("cancelled",)),
    },
    "purchase.purchase": {
        "quote": (("draft",), ("quotation", "confirmed", "processing", "done")),
        "confirm": (("quotation",), ("confirmed", "processing", "done")),
        "process": (("confirmed",), ("processing", "done")),
        "cancel": (("draft", "quotation"), ("cancelled",)),
    },
    "account.invoice": {
        "validate_invoice": (("draft",), ("validated", "posted", "paid")),
        "post": (("draft", "validated"), ("posted", "paid")),
        "cancel": (("draft", "validated"), ("cancelled",)),
    },
    "sale.opportunity": {
        "opportunity": (("lead",), ("opportunity", "converted", "won", "lost", "cancelled")),
        "convert": (("opportunity",), ("converted", "won")),
        "lost": (("lead", "opportunity"), ("lost",)),
        "cancel": (("lead", "opportunity"), ("cancelled",)),
    },
}
# References that Tryton empties (ondelete SET NULL) or deletes with a party instead of
# refusing the delete: Spojka refuses while any exist, so nothing is silently unlinked.
UNLINKED_BY_DELETE: dict[str, tuple[tuple[str, str, str], ...]] = {
    "party.party": (
        ("sale.opportunity", "party", "opportunities"),
        ("project.work", "party", "projects"),
        ("company.employee", "party", "employees"),
        ("company.company", "party", "companies"),
    ),
}
# A button that needs another first (confirm on a draft sale quotes it first).
PREREQUISITES = {("sale.sale", "confirm"): "quote", ("purchase.purchase", "confirm"): "quote"}


# -- value helpers ---------------------------------------------------------------------------


def iso_utc(value: dt.datetime | None) -> str | None:
    """Tryton's naive UTC timestamp as an ISO string with an explicit offset."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC).isoformat()


def naive_utc(since: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def plain(value: Any) -> Any:
    """JSON-able form of a Tryton value (Decimal → str keeps every digit)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(Decimal(value.total_seconds()) / 3600)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def hours(value: dt.timedelta | None) -> str | None:
    if value is None:
        return None
    return str((Decimal(value.total_seconds()) / 3600).quantize(Decimal("0.01")))


def strip_marker(text: str | None) -> str | None:
    if text is None:
        return None
    return MARKER.sub("", text) or None


def with_marker(text: str | None, key: str) -> str:
    return f"{text or ''} [spojka:{key}]".strip()


def _nested(row: Mapping[str, Any], name: str) -> Any:
    """A dotted read comes back under ``name + "."`` (a dict or a list of dicts)."""
    return row.get(f"{name}.")


def _dec(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    return Decimal(str(value))


def _date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


@dataclass(frozen=True)
class ModelStream:
    stream: Stream
    model: str
    fields: tuple[str, ...]
    domain: tuple[Any, ...] = ()


class TrytonConnector(Connector):
    kind = "tryton"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        missing = [k for k in ("url", "database", "password") if not self.config.get(k)]
        if missing:
            raise ConfigError(f"tryton connector needs {', '.join(missing)}")
        self.client = TrytonClient(
            str(self.config["url"]),
            str(self.config["database"]),
            str(self.config.get("user") or "admin"),
            str(self.config["password"]),
            language=str(self.config.get("language") or "en"),
            timeout=float(self.config.get("timeout") or 30.0),
        )
        self.page_size = int(self.config.get("page_size") or 200)
        self._specs = {spec.stream.name: spec for spec in self._declare()}
        self._tax_rates: dict[int, Decimal] = {}
        self._category_taxes: dict[int, list[int]] = {}
        self._category_accounts: dict[int, tuple[int | None, int | None]] = {}
        self._currency_code: str | None = None
        self._work_projects: dict[int, str | None] = {}
        self._countries: dict[str, int] = {}
        self._shapers: dict[str, Callable[[dict[str, Any]], Record]] = {
            "parties": self._shape_party,
            "contacts": self._shape_contact,
            "products": self._shape_product,
            "opportunities": self._shape_opportunity,
            "sales": self._shape_sale,
            "purchases": self._shape_purchase,
            "invoices": self._shape_invoice,
            "projects": self._shape_work,
            "tasks": self._shape_work,
            "timesheet_lines": self._shape_timesheet,
            "employees": self._shape_employee,
        }

    def __repr__(self) -> str:
        return f"TrytonConnector({self.client!r})"

    # -- declaration ---------------------------------------------------------------------

    def _declare(self) -> list[ModelStream]:
        size = self.page_size

        def stream(
            name: str, entity: str, *, writable: bool = True, deletes: bool = False
        ) -> Stream:
            return Stream(
                name=name,
                entity=entity,
                cursor_field="modified_at",
                version_field="modified_at",
                page_size=size,
                supports_deletes=deletes,
                writable=writable,
            )

        # Deletes only where what depends on the record is guarded: Tryton refuses to delete
        # a party used by a sale or invoice, a project with tasks, a task with logged time;
        # Spojka refuses a party an opportunity, project or employee still points to and a
        # converted/won/lost opportunity (see :meth:`delete`). Never: sales and purchases
        # (commercial documents, cancelled by a person), invoices (accounting documents; a
        # posted one is corrected by a credit note, never deleted), timesheet lines (they may
        # be invoiced already), products and employees (read-only).
        line_fields = (
            "lines.type",
            "lines.product",
            "lines.product.rec_name",
            "lines.description",
            "lines.quantity",
            "lines.unit.symbol",
            "lines.unit_price",
            "lines.taxes",
        )
        return [
            ModelStream(
                stream("parties", "Account", deletes=True),
                "party.party",
                (
                    "name",
                    "code",
                    "identifiers.type",
                    "identifiers.code",
                    "contact_mechanisms.type",
                    "contact_mechanisms.value",
                    "addresses.street",
                    "addresses.city",
                    "addresses.postal_code",
                    "addresses.country.code",
                ),
            ),
            ModelStream(
                stream("contacts", "Contact", deletes=True),
                "party.contact_mechanism",
                ("name", "type", "value", "party"),
                (("name", "!=", None),),
            ),
            ModelStream(
                stream("products", "Product", writable=False),
                "product.product",
                (
                    "code",
                    "name",
                    "type",
                    "default_uom.symbol",
                    "list_price_used",
                    "template.account_category",
                    "active",
                ),
            ),
            ModelStream(
                stream("opportunities", "Opportunity", deletes=True),
                "sale.opportunity",
                (
                    "number",
                    "reference",
                    "description",
                    "comment",
                    "party",
                    "state",
                    "amount",
                    "currency.code",
                    "conversion_probability",
                    "start_date",
                    "end_date",
                    "employee.party.name",
                    "lost_reason",
                ),
            ),
            ModelStream(
                stream("sales", "Order"),
                "sale.sale",
                (
                    "number",
                    "reference",
                    "description",
                    "comment",
                    "party",
                    "state",
                    "sale_date",
                    "currency.code",
                    "untaxed_amount",
                    "tax_amount",
                    "total_amount",
                    "invoice_state",
                    "origin",
                    *line_fields,
                ),
            ),
            ModelStream(
                stream("purchases", "Order"),
                "purchase.purchase",
                (
                    "number",
                    "reference",
                    "description",
                    "comment",
                    "party",
                    "state",
                    "purchase_date",
                    "currency.code",
                    "untaxed_amount",
                    "tax_amount",
                    "total_amount",
                    "invoice_state",
                    *line_fields,
                ),
            ),
            ModelStream(
                stream("invoices", "Invoice"),
                "account.invoice",
                (
                    "number",
                    "type",
                    "reference",
                    "description",
                    "comment",
                    "party",
                    "invoice_date",
                    "state",
                    "currency.code",
                    "untaxed_amount",
                    "tax_amount",
                    "total_amount",
                    "amount_to_pay",
                    "lines_to_pay.maturity_date",
                    "taxes.base",
                    "taxes.amount",
                    "taxes.tax",
                    "lines.type",
                    "lines.product",
                    "lines.product.rec_name",
                    "lines.description",
                    "lines.quantity",
                    "lines.unit.symbol",
                    "lines.unit_price",
                    "lines.taxes",
                ),
            ),
            ModelStream(
                stream("projects", "Project", deletes=True),
                "project.work",
                (
                    "name",
                    "number",
                    "type",
                    "party",
                    "parent",
                    "status.name",
                    "effort_duration",
                    "progress",
                    "comment",
                ),
                (("type", "=", "project"),),
            ),
            ModelStream(
                stream("tasks", "Task", deletes=True),
                "project.work",
                (
                    "name",
                    "number",
                    "type",
                    "party",
                    "parent",
                    "path",
                    "status.name",
                    "effort_duration",
                    "progress",
                    "comment",
                    "timesheet_works",
                ),
                (("type", "=", "task"),),
            ),
            ModelStream(
                stream("timesheet_lines", "Timesheet"),
                "timesheet.line",
                (
                    "work",
                    "work.origin",
                    "employee",
                    "employee.party.name",
                    "date",
                    "duration",
                    "description",
                ),
            ),
            ModelStream(
                stream("employees", "Employee", writable=False),
                "company.employee",
                ("party", "party.name", "company", "start_date", "end_date"),
            ),
        ]

    def streams(self) -> Sequence[Stream]:
        return [spec.stream for spec in self._specs.values()]

    def _spec(self, stream: Stream) -> ModelStream:
        try:
            return self._specs[stream.name]
        except KeyError:
            raise ValidationError(f"tryton: no stream {stream.name!r}") from None

    # -- reading -------------------------------------------------------------------------

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        spec = self._spec(stream)
        domain: Domain = list(spec.domain)
        if since:
            moment = naive_utc(since)
            domain.append(["OR", ("create_date", ">=", moment), ("write_date", ">=", moment)])
        last_id = int(page_token) if page_token else 0
        domain.append(("id", ">", last_id))
        rows = self.client.search_read(
            spec.model,
            domain,
            [*spec.fields, "create_date", "write_date"],
            limit=stream.page_size,
            order=(("id", "ASC"),),
        )
        shape = self._shapers[stream.name]
        records = [shape(row) for row in rows]
        token = str(rows[-1]["id"]) if len(rows) == stream.page_size else None
        return Page(records=records, next_token=token)

    def list_ids(self, stream: Stream) -> Iterable[str]:
        spec = self._spec(stream)
        last_id = 0
        while True:
            ids = self.client.search(
                spec.model,
                [*spec.domain, ("id", ">", last_id)],
                limit=5000,
                order=(("id", "ASC"),),
            )
            yield from (str(i) for i in ids)
            if len(ids) < 5000:
                return
            last_id = ids[-1]

    def fetch(self, stream: Stream, external_id: str) -> Record | None:
        """One record by id, in the stream's shape (None when it no longer exists)."""
        spec = self._spec(stream)
        rows = self.client.search_read(
            spec.model,
            [*spec.domain, ("id", "=", int(external_id))],
            [*spec.fields, "create_date", "write_date"],
        )
        return self._shapers[stream.name](rows[0]) if rows else None

    def read_one(self, stream: Stream, external_id: str) -> Record | None:
        """One ``search_read`` by id with the stream's model, domain and fields (None when
        Tryton has no such record in the stream)."""
        if not external_id.isdigit():
            return None  # Tryton's ids are numbers: nothing else can exist
        return self.fetch(stream, external_id)

    # -- shaping: Tryton rows → flat JSON-able records -----------------------------------

    @staticmethod
    def _base(row: Mapping[str, Any]) -> Record:
        created, written = row.get("create_date"), row.get("write_date")
        modified = max(d for d in (created, written) if d is not None) if created else written
        return {
            "id": int(row["id"]),
            "created_at": iso_utc(created),
            "modified_at": iso_utc(modified),
        }

    def _rates(self, tax_ids: Iterable[int]) -> list[Decimal]:
        wanted = [t for t in tax_ids if t not in self._tax_rates]
        if wanted:
            for tax in self.client.read("account.tax", wanted, ["rate"]):
                self._tax_rates[int(tax["id"])] = Decimal(tax["rate"] or 0)
        return [self._tax_rates[t] for t in tax_ids]

    def _vat_percent(self, tax_ids: Iterable[int]) -> str:
        total = sum(self._rates(list(tax_ids)), Decimal(0))
        return str((total * 100).normalize())

    def _lines(self, row: Mapping[str, Any]) -> list[Record]:
        out = []
        for line in _nested(row, "lines") or []:
            if line.get("type", "line") != "line":
                continue
            unit = line.get("unit.") or {}
            product = line.get("product.") or {}
            shaped = {
                "product_id": str(line["product"]) if line.get("product") else None,
                "description": strip_marker(line.get("description"))
                or product.get("rec_name")
                or "—",
                "quantity": plain(_dec(line.get("quantity"))),
                "unit": unit.get("symbol"),
                "unit_price": plain(line.get("unit_price")),
                "vat_rate": self._vat_percent(line.get("taxes") or []),
            }
            # Only the keys a canonical DocumentLine knows, and none that are empty.
            out.append({k: v for k, v in shaped.items() if v is not None})
        return out

    def _shape_party(self, row: dict[str, Any]) -> Record:
        record = self._base(row)
        ico = dic = email = phone = None
        for ident in _nested(row, "identifiers") or []:
            code = ident.get("code") or ""
            if ident.get("type") in VAT_TYPES and dic is None:
                dic = code
            elif ident.get("type") in (None, "", "cz_ico") and ICO.match(code) and ico is None:
                ico = code
        for mech in _nested(row, "contact_mechanisms") or []:
            if mech.get("type") == "email" and email is None:
                email = mech.get("value")
            elif mech.get("type") in ("phone", "mobile") and phone is None:
                phone = mech.get("value")
        addresses = _nested(row, "addresses") or []
        address = addresses[0] if addresses else {}
        country = address.get("country.") or {}
        record.update(
            name=row.get("name"),
            code=row.get("code"),
            ico=ico,
            dic=dic,
            email=email,
            phone=phone,
            street=address.get("street"),
            city=address.get("city"),
            zip=address.get("postal_code"),
            country=country.get("code"),
        )
        if any(address.get(k) for k in ("street", "city", "postal_code")):
            record["address"] = {
                k: v
                for k, v in {
                    "street": address.get("street"),
                    "city": address.get("city"),
                    "zip": address.get("postal_code"),
                    "country": country.get("code"),
                }.items()
                if v
            }
        return record

    def _shape_contact(self, row: dict[str, Any]) -> Record:
        record = self._base(row)
        name = (row.get("name") or "").strip()
        first, _, last = name.rpartition(" ")
        kind = row.get("type")
        record.update(
            name=name,
            first_name=first or None,
            last_name=last or name,
            email=row.get("value") if kind == "email" else None,
            phone=row.get("value") if kind in ("phone", "mobile") else None,
            kind=kind,
            party_id=str(row["party"]) if row.get("party") else None,
        )
        return record

    def _category_vat(self, category: int | None) -> str | None:
        if not category:
            return None
        if category not in self._category_taxes:
            (row,) = self.client.read("product.category", [category], ["customer_taxes_used"])
            self._category_taxes[category] = list(row.get("customer_taxes_used") or [])
        return self._vat_percent(self._category_taxes[category])

    def _shape_product(self, row: dict[str, Any]) -> Record:
        record = self._base(row)
        template = _nested(row, "template") or {}
        uom = _nested(row, "default_uom") or {}
        record.update(
            code=row.get("code") or f"TRY-{row['id']}",
            name=row.get("name"),
            kind=row.get("type"),
            unit=uom.get("symbol"),
            list_price=plain(row.get("list_price_used")),
            currency=self._company_currency(),
            vat_rate=self._category_vat(template.get("account_category")),
            active=row.get("active", True),
        )
        return record

    def _company_currency(self) -> str:
        if self._currency_code is None:
            company = self.client.company_id
            (row,) = self.client.read("company.company", [company], ["currency.code"])
            self._currency_code = str((_nested(row, "currency") or {}).get("code") or "CZK")
        return self._currency_code

    def _shape_opportunity(self, row: dict[str, Any]) -> Record:
        record = self._base(row)
        employee = _nested(row, "employee") or {}
        record.update(
            number=row.get("number"),
            reference=row.get("reference"),
            name=row.get("description") or row.get("number"),
            comment=strip_marker(row.get("comment")),
            party_id=str(row["party"]) if row.get("party") else None,
            state=row.get("state"),
            amount=plain(row.get("amount")),
            currency=(_nested(row, "currency") or {}).get("code"),
            probability=(
                round(float(row["conversion_probability"]) * 100)
                if row.get("conversion_probability") is not None
                else None
            ),
            start_date=plain(row.get("start_date")),
            end_date=plain(row.get("end_date")),
            owner=(employee.get("party.") or {}).get("name"),
            lost_reason=row.get("lost_reason"),
        )
        return record

    def _shape_order(self, row: dict[str, Any], date_field: str) -> Record:
        record = self._base(row)
        record.update(
            number=row.get("number") or f"DRAFT-{row['id']}",
            reference=row.get("reference"),
            description=row.get("description"),
            comment=strip_marker(row.get("comment")),
            party_id=str(row["party"]) if row.get("party") else None,
            state=row.get("state"),
            date=plain(row.get(date_field)),
            currency=(_nested(row, "currency") or {}).get("code"),
            untaxed_amount=plain(row.get("untaxed_amount")),
            tax_amount=plain(row.get("tax_amount")),
            total_amount=plain(row.get("total_amount")),
            invoice_state=row.get("invoice_state"),
            lines=self._lines(row),
        )
        return record

    def _shape_sale(self, row: dict[str, Any]) -> Record:
        record = self._shape_order(row, "sale_date")
        origin = row.get("origin") or ""
        record["opportunity_id"] = (
            origin.split(",", 1)[1] if origin.startswith("sale.opportunity,") else None
        )
        return record

    def _shape_purchase(self, row: dict[str, Any]) -> Record:
        return self._shape_order(row, "purchase_date")

    def _shape_invoice(self, row: dict[str, Any]) -> Record:
        record = self._base(row)
        state = row.get("state")
        total = _dec(row.get("total_amount")) or Decimal(0)
        to_pay = _dec(row.get("amount_to_pay"))
        if state == "paid":
            payment_state = "paid"
        elif state != "posted":
            payment_state = "not_due"
        elif to_pay is not None and to_pay < total:
            payment_state = "partially_paid"
        else:
            payment_state = "unpaid"
        maturities = [
            m["maturity_date"]
            for m in _nested(row, "lines_to_pay") or []
            if m.get("maturity_date") is not None
        ]
        breakdown = []
        for tax in _nested(row, "taxes") or []:
            rate = self._rates([tax["tax"]])[0] if tax.get("tax") else Decimal(0)
            breakdown.append(
                {
                    "rate": str((rate * 100).normalize()),
                    "base": plain(tax.get("base")),
                    "vat": plain(tax.get("amount")),
                }
            )
        record.update(
            number=row.get("number") or f"DRAFT-{row['id']}",
            direction="out" if row.get("type") == "out" else "in",
            reference=row.get("reference"),
            description=row.get("description"),
            comment=strip_marker(row.get("comment")),
            party_id=str(row["party"]) if row.get("party") else None,
            # Drafts have no invoice date yet; the creation day stands in until posting.
            issued=plain(row.get("invoice_date")) or (record["created_at"] or "")[:10] or None,
            invoice_date=plain(row.get("invoice_date")),
            due=plain(min(maturities)) if maturities else None,
            state=state,
            payment_state=payment_state,
            currency=(_nested(row, "currency") or {}).get("code"),
            untaxed_amount=plain(row.get("untaxed_amount")),
            tax_amount=plain(row.get("tax_amount")),
            total_amount=plain(row.get("total_amount")),
            amount_to_pay=plain(to_pay),
            lines=self._lines(row),
            vat_breakdown=breakdown,
        )
        return record

    def _shape_work(self, row: dict[str, Any]) -> Record:
        record = self._base(row)
        path = [p for p in str(row.get("path") or "").split("/") if p]
        record.update(
            name=row.get("name"),
            number=row.get("number"),
            type=row.get("type"),
            party_id=str(row["party"]) if row.get("party") else None,
            parent_id=str(row["parent"]) if row.get("parent") else None,
            project_id=path[0] if path else (str(row["parent"]) if row.get("parent") else None),
            status=(_nested(row, "status") or {}).get("name"),
            effort_hours=hours(row.get("effort_duration")),
            progress=row.get("progress"),
            comment=strip_marker(row.get("comment")),
            timesheet_work_id=(
                str(row["timesheet_works"][0]) if row.get("timesheet_works") else None
            ),
        )
        return record

    def _shape_timesheet(self, row: dict[str, Any]) -> Record:
        record = self._base(row)
        work = _nested(row, "work") or {}
        origin = str(work.get("origin") or "")
        employee = _nested(row, "employee") or {}
        task_id = origin.split(",", 1)[1] if origin.startswith("project.work,") else None
        record.update(
            work_id=str(row["work"]) if row.get("work") else None,
            task_id=task_id,
            project_id=self._project_of(int(task_id)) if task_id else None,
            employee_id=str(row["employee"]) if row.get("employee") else None,
            person=(employee.get("party.") or {}).get("name"),
            date=plain(row.get("date")),
            hours=hours(row.get("duration")),
            description=strip_marker(row.get("description")),
        )
        return record

    def _project_of(self, work_id: int) -> str | None:
        """The root project of a task (cached: a task never moves between projects here)."""
        if work_id not in self._work_projects:
            rows = self.client.read("project.work", [work_id], ["path", "parent"])
            path = [p for p in str(rows[0].get("path") or "").split("/") if p] if rows else []
            self._work_projects[work_id] = path[0] if path else str(work_id)
        return self._work_projects[work_id]

    def _shape_employee(self, row: dict[str, Any]) -> Record:
        record = self._base(row)
        record.update(
            name=(_nested(row, "party") or {}).get("name"),
            party_id=str(row["party"]) if row.get("party") else None,
            start_date=plain(row.get("start_date")),
            end_date=plain(row.get("end_date")),
        )
        return record

    # -- writing -------------------------------------------------------------------------

    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        """Create or update one record; ``_action`` in the record clicks a workflow button."""
        self._spec(stream)
        if not stream.writable:
            raise PermanentError(f"tryton: stream {stream.name!r} is read-only")
        writers: dict[
            str, Callable[[str, Mapping[str, Any], int | None, str], tuple[int, bool]]
        ] = {
            "parties": self._write_party,
            "contacts": self._write_contact,
            "opportunities": self._write_opportunity,
            "sales": self._write_order,
            "purchases": self._write_order,
            "invoices": self._write_invoice,
            "projects": self._write_work,
            "tasks": self._write_work,
            "timesheet_lines": self._write_timesheet,
        }
        data = {k: v for k, v in record.items() if k != "_action"}
        existing = int(external_id) if external_id else None
        record_id, created = writers[stream.name](stream.name, data, existing, idempotency_key)
        action = record.get("_action")
        if action:
            for step in str(action).split(","):
                self.perform(stream, str(record_id), step.strip())
        fresh = self.fetch(stream, str(record_id))
        version = fresh.get("modified_at") if fresh else None
        return WriteResult(external_id=str(record_id), version=version, created=created)

    def _find_marked(self, model: str, field: str, key: str) -> int | None:
        found = self.client.search(model, [(field, "like", f"%[spojka:{key}]")], limit=1)
        return found[0] if found else None

    def _lookup_id(self, model: str, field: str, value: Any) -> int:
        found = self.client.search(model, [(field, "=", value)], limit=1)
        if not found:
            raise ValidationError(f"tryton: no {model} with {field} = {value!r}")
        return found[0]

    def _write_party(
        self, stream: str, data: Mapping[str, Any], existing: int | None, key: str
    ) -> tuple[int, bool]:
        # The canonical Account nests its address; flat street/city/zip/country work too.
        nested = data.get("address")
        if isinstance(nested, Mapping):
            data = {**{k: v for k, v in nested.items() if v}, **data}
        if existing is None:
            found = self.client.search(
                "party.identifier", [("code", "=", f"spojka:{key}"), ("type", "=", None)], limit=1
            )
            if found:
                # A retried create: the first attempt made the party; leave it as it is.
                (ident,) = self.client.read("party.identifier", found, ["party"])
                return int(ident["party"]), False
        country = self._country_id(str(data["country"])) if data.get("country") else None
        address = {
            k: v
            for k, v in {
                "street": data.get("street"),
                "city": data.get("city"),
                "postal_code": data.get("zip"),
                "country": country,
            }.items()
            if v is not None
        }
        if existing is None:
            identifiers = [{"type": None, "code": f"spojka:{key}"}]
            if data.get("ico"):
                identifiers.append({"type": None, "code": str(data["ico"])})
            if data.get("dic"):
                dic = str(data["dic"]).upper()
                identifiers.append(
                    {"type": "sk_vat" if dic.startswith("SK") else "cz_vat", "code": dic}
                )
            mechanisms = []
            if data.get("email"):
                mechanisms.append({"type": "email", "value": data["email"]})
            if data.get("phone"):
                mechanisms.append({"type": "phone", "value": data["phone"]})
            values: dict[str, Any] = {
                "name": data["name"],
                "identifiers": [["create", identifiers]],
                "contact_mechanisms": [["create", mechanisms]],
            }
            # Sales and invoices need an address, even an empty one (as Tryton's client does).
            values["addresses"] = [["create", [address]]]
            (party_id,) = self.client.create("party.party", [values])
            return party_id, True
        changes: dict[str, Any] = {}
        if data.get("name"):
            changes["name"] = data["name"]
        if address:
            (row,) = self.client.read("party.party", [existing], ["addresses"])
            if row["addresses"]:
                self.client.write("party.address", [row["addresses"][0]], address)
            else:
                changes["addresses"] = [["create", [address]]]
        for kind, value in (("email", data.get("email")), ("phone", data.get("phone"))):
            if not value:
                continue
            mechs = self.client.search(
                "party.contact_mechanism", [("party", "=", existing), ("type", "=", kind)], limit=1
            )
            if mechs:
                self.client.write("party.contact_mechanism", mechs, {"value": value})
            else:
                self.client.create(
                    "party.contact_mechanism", [{"party": existing, "type": kind, "value": value}]
                )
        if changes:
            self.client.write("party.party", [existing], changes)
        return existing, False

    def _write_contact(
        self, stream: str, data: Mapping[str, Any], existing: int | None, key: str
    ) -> tuple[int, bool]:
        name = data.get("name") or " ".join(
            p for p in (data.get("first_name"), data.get("last_name")) if p
        )
        kind = "email" if data.get("email") else "phone"
        value = data.get("email") or data.get("phone")
        if existing is not None:
            self.client.write("party.contact_mechanism", [existing], {"name": name, "value": value})
            return existing, False
        party = data.get("party_id")
        if not party:
            raise ValidationError("tryton: a contact needs party_id (the account it belongs to)")
        found = self.client.search(
            "party.contact_mechanism",
            [("party", "=", int(party)), ("type", "=", kind), ("value", "=", value)],
            limit=1,
        )
        if found:
            return found[0], False
        (mech_id,) = self.client.create(
            "party.contact_mechanism",
            [{"party": int(party), "type": kind, "value": value, "name": name}],
        )
        return mech_id, True

    def _country_id(self, code: str) -> int:
        code = code.upper()
        if code not in self._countries:
            self._countries[code] = self._lookup_id("country.country", "code", code)
        return self._countries[code]

    def _currency_id(self, code: str | None) -> int | None:
        if not code:
            return None
        return self._lookup_id("currency.currency", "code", str(code).upper())

    def _write_opportunity(
        self, stream: str, data: Mapping[str, Any], existing: int | None, key: str
    ) -> tuple[int, bool]:
        values: dict[str, Any] = {}
        if data.get("name"):
            values["description"] = data["name"]
        if data.get("amount") is not None:
            values["amount"] = _dec(data["amount"])
        if data.get("probability") is not None:
            values["conversion_probability"] = float(data["probability"]) / 100
        if data.get("end_date"):
            values["end_date"] = _date(data["end_date"])
        if data.get("currency"):
            values["currency"] = self._currency_id(data["currency"])
        if existing is None:
            existing = self._find_marked("sale.opportunity", "comment", key)
            if existing is not None:
                return existing, False
            if not data.get("party_id"):
                raise ValidationError("tryton: an opportunity needs party_id")
            values.update(
                party=int(data["party_id"]),
                company=self.client.company_id,
                start_date=_date(data.get("start_date")) or dt.date.today(),
                comment=with_marker(data.get("comment"), key),
            )
            if self.client.employee_id:
                values.setdefault("employee", self.client.employee_id)
            (opp_id,) = self.client.create("sale.opportunity", [values])
            return opp_id, True
        if values:
            self.client.write("sale.opportunity", [existing], values)
        return existing, False

    def _line_values(
        self, line: Mapping[str, Any], *, purchase: bool, invoice_type: str | None = None
    ) -> dict[str, Any]:
        product = int(line["product_id"]) if line.get("product_id") else None
        values: dict[str, Any] = {
            "type": "line",
            "quantity": float(_dec(line.get("quantity")) or 1),
            "unit_price": _dec(line.get("unit_price")),
            "description": line.get("description") or "",
        }
        if product is not None:
            (prod,) = self.client.read(
                "product.product",
                [product],
                ["default_uom", "purchase_uom", "template.account_category"],
            )
            category = (_nested(prod, "template") or {}).get("account_category")
            values["product"] = product
            values["unit"] = prod["purchase_uom"] if purchase else prod["default_uom"]
            if category:
                taxes = self._category_tax_ids(category, supplier=purchase)
                values["taxes"] = [["add", taxes]]
                if invoice_type is not None:
                    revenue, expense = self._category_account(category)
                    values["account"] = expense if invoice_type == "in" else revenue
        if values["unit_price"] is None:
            raise ValidationError("tryton: every line needs unit_price")
        return values

    def _category_tax_ids(self, category: int, *, supplier: bool) -> list[int]:
        field = "supplier_taxes_used" if supplier else "customer_taxes_used"
        (row,) = self.client.read("product.category", [category], [field])
        return list(row.get(field) or [])

    def _category_account(self, category: int) -> tuple[int | None, int | None]:
        if category not in self._category_accounts:
            (row,) = self.client.read(
                "product.category", [category], ["account_revenue", "account_expense"]
            )
            self._category_accounts[category] = (row["account_revenue"], row["account_expense"])
        return self._category_accounts[category]

    def _write_order(
        self, stream: str, data: Mapping[str, Any], existing: int | None, key: str
    ) -> tuple[int, bool]:
        purchase = stream == "purchases"
        model = "purchase.purchase" if purchase else "sale.sale"
        date_field = "purchase_date" if purchase else "sale_date"
        values: dict[str, Any] = {}
        for source, target in (("description", "description"), ("reference", "reference")):
            if data.get(source):
                values[target] = data[source]
        if data.get("date"):
            values[date_field] = _date(data["date"])
        if data.get("currency"):
            values["currency"] = self._currency_id(data["currency"])
        if existing is None:
            existing = self._find_marked(model, "comment", key)
            if existing is not None:
                return existing, False
            if not data.get("party_id"):
                raise ValidationError(f"tryton: a {model} needs party_id")
            values.update(
                party=int(data["party_id"]),
                company=self.client.company_id,
                comment=with_marker(data.get("comment"), key),
            )
            addresses = self.client.search("party.address", [("party", "=", values["party"])])
            if addresses:
                values["invoice_address"] = addresses[0]
                if not purchase:
                    values["shipment_address"] = addresses[0]
            lines = [self._line_values(line, purchase=purchase) for line in data.get("lines", [])]
            if lines:
                values["lines"] = [["create", lines]]
            if not purchase and data.get("opportunity_id"):
                values["origin"] = f"sale.opportunity,{int(data['opportunity_id'])}"
            (record_id,) = self.client.create(model, [values])
            return record_id, True
        if values:
            self.client.write(model, [existing], values)
        return existing, False

    def _write_invoice(
        self, stream: str, data: Mapping[str, Any], existing: int | None, key: str
    ) -> tuple[int, bool]:
        direction = data.get("direction", "in")
        if existing is not None:
            changes = {
                k: v
                for k, v in {
                    "reference": data.get("reference"),
                    "description": data.get("description"),
                    "invoice_date": _date(data.get("issued")),
                }.items()
                if v is not None
            }
            if changes:
                self.client.write("account.invoice", [existing], changes)
            return existing, False
        if direction != "in":
            raise PermanentError(
                "tryton: Spojka creates supplier invoices only; customer invoices come "
                "from confirmed sales"
            )
        found = self._find_marked("account.invoice", "comment", key)
        if found is not None:
            return found, False
        if not data.get("party_id"):
            raise ValidationError("tryton: a supplier invoice needs party_id")
        party = int(data["party_id"])
        values: dict[str, Any] = {
            "type": "in",
            "party": party,
            "company": self.client.company_id,
            "account": self._payable_account(party),
            "invoice_date": _date(data.get("issued")),
            "reference": data.get("reference") or data.get("number"),
            "description": data.get("description"),
            "comment": with_marker(data.get("comment"), key),
            "currency": self._currency_id(data.get("currency") or self._company_currency()),
        }
        addresses = self.client.search("party.address", [("party", "=", party)], limit=1)
        if addresses:
            values["invoice_address"] = addresses[0]
        lines = [
            self._line_values(line, purchase=True, invoice_type="in")
            for line in data.get("lines", [])
        ]
        for line in lines:
            line["currency"] = values["currency"]
            line["company"] = values["company"]
        values["lines"] = [["create", lines]]
        (invoice_id,) = self.client.create(
            "account.invoice", [{k: v for k, v in values.items() if v is not None}]
        )
        return invoice_id, True

    def _payable_account(self, party: int) -> int | None:
        (row,) = self.client.read("party.party", [party], ["account_payable"])
        if row.get("account_payable"):
            return int(row["account_payable"])
        (config,) = self.client.read("account.configuration", [1], ["default_account_payable"])
        payable = config.get("default_account_payable")
        return int(payable) if payable else None

    def _write_work(
        self, stream: str, data: Mapping[str, Any], existing: int | None, key: str
    ) -> tuple[int, bool]:
        task = stream == "tasks"
        values: dict[str, Any] = {}
        if data.get("name"):
            values["name"] = data["name"]
        if data.get("effort_hours") is not None:
            values["effort_duration"] = dt.timedelta(hours=float(data["effort_hours"]))
        if data.get("status"):
            values["status"] = self._lookup_id("project.work.status", "name", data["status"])
        if data.get("party_id"):
            values["party"] = int(data["party_id"])
        if existing is None:
            existing = self._find_marked("project.work", "comment", key)
            if existing is not None:
                return existing, False
            parent = data.get("parent_id") or (data.get("project_id") if task else None)
            if task and not parent:
                raise ValidationError("tryton: a task needs project_id (or parent_id)")
            values.update(
                type="task" if task else "project",
                company=self.client.company_id,
                comment=with_marker(data.get("comment"), key),
                timesheet_available=True,
            )
            if parent:
                values["parent"] = int(parent)
            (work_id,) = self.client.create("project.work", [values])
            return work_id, True
        if values:
            self.client.write("project.work", [existing], values)
        return existing, False

    def _write_timesheet(
        self, stream: str, data: Mapping[str, Any], existing: int | None, key: str
    ) -> tuple[int, bool]:
        values: dict[str, Any] = {}
        if data.get("hours") is not None:
            values["duration"] = dt.timedelta(hours=float(data["hours"]))
        if data.get("date"):
            values["date"] = _date(data["date"])
        if existing is not None:
            if data.get("description") is not None:
                values["description"] = data["description"]
            if values:
                self.client.write("timesheet.line", [existing], values)
            return existing, False
        found = self._find_marked("timesheet.line", "description", key)
        if found is not None:
            return found, False
        work = data.get("work_id")
        if not work and data.get("task_id"):
            (task,) = self.client.read("project.work", [int(data["task_id"])], ["timesheet_works"])
            if not task["timesheet_works"]:
                raise ValidationError(f"tryton: task {data['task_id']} does not accept timesheets")
            work = task["timesheet_works"][0]
        if not work:
            raise ValidationError("tryton: a timesheet line needs task_id or work_id")
        employee = data.get("employee_id") or self.client.employee_id
        if not employee:
            raise ValidationError("tryton: a timesheet line needs employee_id")
        values.update(
            work=int(work),
            employee=int(employee),
            company=self.client.company_id,
            description=with_marker(data.get("description"), key),
        )
        values.setdefault("date", dt.date.today())
        (line_id,) = self.client.create("timesheet.line", [values])
        return line_id, True

    # -- deleting ------------------------------------------------------------------------

    def delete(self, stream: Stream, external_id: str, *, idempotency_key: str) -> WriteResult:
        """Delete a record of a stream declaring deletes; one already gone is a success.

        An opportunity still a lead or an opportunity is cancelled first (Tryton deletes
        cancelled ones only). Whatever Tryton refuses — a party used by a sale or invoice, a
        project with tasks, a task with logged time — is a ``PermanentError`` with Tryton's
        reason, so the delete waits for a person instead of being retried.
        """
        if not stream.supports_deletes:
            return super().delete(stream, external_id, idempotency_key=idempotency_key)
        spec = self._spec(stream)
        if not external_id.isdigit():
            return WriteResult(external_id=external_id, already_gone=True)
        record_id = int(external_id)
        # archived (inactive) records are deleted too: only a missing one is "gone"
        found = self.client.search(
            spec.model,
            [*spec.domain, ("id", "=", record_id)],
            limit=1,
            context={"active_test": False},
        )
        if not found:
            return WriteResult(external_id=external_id, already_gone=True)
        self._refuse_silent_unlinks(spec.model, record_id)
        cancel = spec.model == "sale.opportunity" and self._must_cancel_first(record_id)
        try:
            if cancel:
                self.client.button(spec.model, "cancel", [record_id])
            self.client.delete(spec.model, [record_id])
        except PermanentError as exc:
            reason = exc.detail.get("message") or exc.message
            raise PermanentError(
                f"tryton: {spec.model} {record_id} cannot be deleted: {reason}",
                detail={**exc.detail, "model": spec.model, "id": record_id},
            ) from exc
        return WriteResult(external_id=external_id)

    def _refuse_silent_unlinks(self, model: str, record_id: int) -> None:
        """Refuse a delete Tryton would carry out by emptying (or deleting) references to
        the record elsewhere, instead of refusing it as it does for sales and invoices."""
        users = []
        for other, field, label in UNLINKED_BY_DELETE.get(model, ()):
            found = self.client.search(
                other, [(field, "=", record_id)], limit=100, context={"active_test": False}
            )
            if found:
                users.append(f"{label} ({len(found)}{'+' if len(found) == 100 else ''})")
        if users:
            raise PermanentError(
                f"tryton: {model} {record_id} cannot be deleted: it is still used by "
                f"{', '.join(users)}, which Tryton would leave without it",
                detail={"model": model, "id": record_id, "used_by": users},
            )

    def _must_cancel_first(self, record_id: int) -> bool:
        """Does this opportunity need cancelling before Tryton deletes it? (or refuse)"""
        state = self._state("sale.opportunity", record_id)
        if state in ("lead", "opportunity"):
            return True
        if state != "cancelled":
            raise PermanentError(
                f"tryton: sale.opportunity {record_id} cannot be deleted: it is {state}, and "
                "Tryton keeps converted, won and lost opportunities (their sales refer to them)",
                detail={"model": "sale.opportunity", "id": record_id, "state": state},
            )
        return False

    # -- workflow buttons ----------------------------------------------------------------

    def perform(self, stream: Stream, external_id: str, action: str) -> str:
        """Click a workflow button idempotently; returns the record's state afterwards."""
        model = self._spec(stream).model
        buttons = BUTTONS.get(model, {})
        if action not in buttons:
            known = ", ".join(buttons) or "none"
            raise ValidationError(f"tryton: {model} has no action {action!r} (known: {known})")
        record_id = int(external_id)
        allowed, done = buttons[action]
        state = self._state(model, record_id)
        if state in done:
            return state
        prerequisite = PREREQUISITES.get((model, action))
        if state not in allowed and prerequisite and state in buttons[prerequisite][0]:
            self.perform(stream, external_id, prerequisite)
            state = self._state(model, record_id)
        if state not in allowed:
            raise PermanentError(
                f"tryton: cannot {action} {model} {record_id} in state {state!r}",
                detail={"state": state, "action": action},
            )
        self.client.button(model, action, [record_id])
        return self._state(model, record_id)

    def _state(self, model: str, record_id: int) -> str:
        rows = self.client.read(model, [record_id], ["state"])
        if not rows:
            raise PermanentError(f"tryton: {model} {record_id} does not exist")
        return str(rows[0]["state"])

    # -- health --------------------------------------------------------------------------

    def health(self) -> Health:
        started = time.perf_counter()
        try:
            version = self.client.server_version()
            self.client.login()
            self.client.search("party.party", [], limit=1)
        except SpojkaError as exc:
            return Health(ok=False, detail=exc.message)
        return Health(
            ok=True,
            detail=f"Tryton {version}, database '{self.client.database}'",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            extra={"version": version},
        )

    def close(self) -> None:
        self.client.close()
