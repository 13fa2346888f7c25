"""Canonical model v1: the versioned data contracts every connector translates to and from.

Each entity says which fields are mandatory (pydantic required fields), which of them
identify a record across systems (``identifiers``), and the contract version that a stored
record remembers. Money is ``Decimal``; amounts are in the record's ``currency``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from spojka.model import identifiers as ids

Currency = str  # ISO 4217, e.g. CZK, EUR


class CanonicalEntity(BaseModel):
    """Base of every canonical contract."""

    def canonical_json(self) -> str:
        """The stored form: compact JSON in field order, empty fields left out."""
        return self.model_dump_json(exclude_none=True)

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)

    entity: ClassVar[str] = ""
    contract_version: ClassVar[int] = 1
    identifiers: ClassVar[tuple[str, ...]] = ()
    #: free-form fields a connector wants to carry without a canonical home
    extra: dict[str, Any] | None = None


def _check_ico(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = ids.normalize_ico(value)
    if not ids.is_valid_ico(value):
        raise ValueError(f"IČO {value!r} is not 8 digits with a valid check digit")
    return value


def _check_dic(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = ids.normalize_dic(value)
    if not ids.is_valid_dic(value):
        raise ValueError(f"DIČ {value!r} must be CZ/SK followed by 8-10 digits")
    return value


def _check_email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip()
    if not ids.is_valid_email(value):
        raise ValueError(f"e-mail {value!r} is not a valid address")
    return value.lower()


Ico = Annotated[str | None, AfterValidator(_check_ico)]
Dic = Annotated[str | None, AfterValidator(_check_dic)]
Email = Annotated[str | None, AfterValidator(_check_email)]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    street: str | None = None
    city: str | None = None
    zip: str | None = None
    country: str = "CZ"


class Account(CanonicalEntity):
    """A company the business deals with (customer, supplier, partner)."""

    entity: ClassVar[str] = "Account"
    identifiers: ClassVar[tuple[str, ...]] = ("ico", "dic", "domain")

    name: str = Field(min_length=1, max_length=255)
    ico: Ico = None
    dic: Dic = None
    email: Email = None
    phone: str | None = None
    domain: str | None = None
    address: Address | None = None
    kind: Literal["customer", "supplier", "partner", "prospect"] = "customer"
    owner: str | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = ids.normalize_domain(value)
        if not ids.is_valid_domain(value):
            raise ValueError(f"domain {value!r} is not a valid host name")
        return value


class Contact(CanonicalEntity):
    entity: ClassVar[str] = "Contact"
    identifiers: ClassVar[tuple[str, ...]] = ("email",)

    first_name: str | None = None
    last_name: str = Field(min_length=1)
    email: Email = None
    phone: str | None = None
    title: str | None = None
    account_id: str | None = None


class Opportunity(CanonicalEntity):
    entity: ClassVar[str] = "Opportunity"

    name: str = Field(min_length=1)
    account_id: str
    stage: Literal["lead", "qualified", "proposal", "negotiation", "won", "lost"] = "lead"
    amount: Decimal | None = None
    currency: Currency = "CZK"
    probability: int | None = Field(default=None, ge=0, le=100)
    expected_close: date | None = None
    owner: str | None = None


class DocumentLine(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    description: str = Field(min_length=1)
    quantity: Decimal = Decimal(1)
    unit: str = "ks"
    unit_price: Decimal
    vat_rate: Decimal = Decimal(21)
    product_id: str | None = None

    @property
    def net(self) -> Decimal:
        return self.quantity * self.unit_price


class Quote(CanonicalEntity):
    entity: ClassVar[str] = "Quote"
    identifiers: ClassVar[tuple[str, ...]] = ("number",)

    number: str = Field(min_length=1)
    account_id: str
    opportunity_id: str | None = None
    issued: date | None = None
    valid_until: date | None = None
    currency: Currency = "CZK"
    lines: list[DocumentLine] = Field(default_factory=list)


class Order(CanonicalEntity):
    """Zakázka / objednávka."""

    entity: ClassVar[str] = "Order"
    identifiers: ClassVar[tuple[str, ...]] = ("number",)

    number: str = Field(min_length=1)
    account_id: str
    opportunity_id: str | None = None
    ordered: date | None = None
    state: Literal["draft", "confirmed", "done", "cancelled"] = "draft"
    currency: Currency = "CZK"
    lines: list[DocumentLine] = Field(default_factory=list)


class VatBreakdown(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: Decimal
    base: Decimal
    vat: Decimal


class Invoice(CanonicalEntity):
    """Faktura / daňový doklad."""

    entity: ClassVar[str] = "Invoice"
    identifiers: ClassVar[tuple[str, ...]] = ("number", "variable_symbol")

    number: str = Field(min_length=1)
    direction: Literal["out", "in"] = "out"
    account_id: str
    order_id: str | None = None
    variable_symbol: str | None = None
    issued: date
    due: date | None = None
    taxable_supply: date | None = None
    currency: Currency = "CZK"
    state: Literal["draft", "posted", "paid", "cancelled"] = "draft"
    lines: list[DocumentLine] = Field(default_factory=list)
    vat_breakdown: list[VatBreakdown] = Field(default_factory=list)
    total: Decimal | None = None

    @field_validator("variable_symbol")
    @classmethod
    def _vs(cls, value: str | None) -> str | None:
        if value and not ids.is_valid_variable_symbol(value):
            raise ValueError(f"variable symbol {value!r} must be up to 10 digits")
        return value or None

    @model_validator(mode="after")
    def _fill_breakdown(self) -> Invoice:
        """Derive the VAT breakdown from lines when the source gave none."""
        if self.lines and not self.vat_breakdown:
            per_rate: dict[Decimal, Decimal] = {}
            for line in self.lines:
                per_rate[line.vat_rate] = per_rate.get(line.vat_rate, Decimal(0)) + line.net
            self.vat_breakdown = [
                VatBreakdown(rate=r, base=b, vat=(b * r / 100).quantize(Decimal("0.01")))
                for r, b in sorted(per_rate.items())
            ]
        if self.total is None and self.vat_breakdown:
            self.total = sum((v.base + v.vat for v in self.vat_breakdown), Decimal(0))
        return self


class Payment(CanonicalEntity):
    entity: ClassVar[str] = "Payment"
    identifiers: ClassVar[tuple[str, ...]] = ("variable_symbol",)

    amount: Decimal
    currency: Currency = "CZK"
    paid_on: date
    invoice_id: str | None = None
    variable_symbol: str | None = None
    iban: str | None = None


class Product(CanonicalEntity):
    entity: ClassVar[str] = "Product"
    identifiers: ClassVar[tuple[str, ...]] = ("code",)

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    unit: str = "ks"
    list_price: Decimal | None = None
    currency: Currency = "CZK"
    vat_rate: Decimal = Decimal(21)


class PricelistItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: str
    price: Decimal
    min_quantity: Decimal = Decimal(1)


class Pricelist(CanonicalEntity):
    entity: ClassVar[str] = "Pricelist"

    name: str = Field(min_length=1)
    currency: Currency = "CZK"
    valid_from: date | None = None
    valid_to: date | None = None
    items: list[PricelistItem] = Field(default_factory=list)


class Contract(CanonicalEntity):
    """Contract with its SLA terms."""

    entity: ClassVar[str] = "Contract"
    identifiers: ClassVar[tuple[str, ...]] = ("number",)

    number: str = Field(min_length=1)
    account_id: str
    starts: date
    ends: date | None = None
    sla_response_hours: Decimal | None = None
    sla_resolution_hours: Decimal | None = None
    value: Decimal | None = None
    currency: Currency = "CZK"


class Activity(CanonicalEntity):
    entity: ClassVar[str] = "Activity"

    kind: Literal["call", "meeting", "email", "note", "task"] = "note"
    subject: str = Field(min_length=1)
    at: datetime
    account_id: str | None = None
    contact_id: str | None = None
    opportunity_id: str | None = None
    body: str | None = None


class Project(CanonicalEntity):
    entity: ClassVar[str] = "Project"
    identifiers: ClassVar[tuple[str, ...]] = ("code",)

    name: str = Field(min_length=1)
    code: str | None = None
    account_id: str | None = None
    opportunity_id: str | None = None
    status: Literal["planned", "active", "on_hold", "done", "cancelled"] = "planned"
    starts: date | None = None
    ends: date | None = None
    budget: Decimal | None = None
    currency: Currency = "CZK"
    manager: str | None = None


class Milestone(CanonicalEntity):
    """Milník / míľnik."""

    entity: ClassVar[str] = "Milestone"

    name: str = Field(min_length=1)
    project_id: str
    due: date | None = None
    billable_amount: Decimal | None = None
    status: Literal["open", "reached", "invoiced"] = "open"


class Task(CanonicalEntity):
    entity: ClassVar[str] = "Task"

    subject: str = Field(min_length=1)
    project_id: str
    milestone_id: str | None = None
    status: Literal["new", "in_progress", "done", "closed"] = "new"
    assignee: str | None = None
    estimated_hours: Decimal | None = None
    due: date | None = None


class Timesheet(CanonicalEntity):
    entity: ClassVar[str] = "Timesheet"

    task_id: str | None = None
    project_id: str
    person: str = Field(min_length=1)
    spent_on: date
    hours: Decimal = Field(gt=0)
    note: str | None = None


class ResourceBooking(CanonicalEntity):
    entity: ClassVar[str] = "ResourceBooking"

    person: str = Field(min_length=1)
    project_id: str
    starts: date
    ends: date
    hours_per_day: Decimal = Decimal(8)


class Risk(CanonicalEntity):
    """Risk or issue on a project."""

    entity: ClassVar[str] = "Risk"

    title: str = Field(min_length=1)
    project_id: str
    kind: Literal["risk", "issue"] = "risk"
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    status: Literal["open", "mitigated", "closed"] = "open"
    owner: str | None = None


class ChangeRequest(CanonicalEntity):
    entity: ClassVar[str] = "ChangeRequest"

    title: str = Field(min_length=1)
    project_id: str
    opportunity_id: str | None = None
    status: Literal["proposed", "approved", "rejected", "done"] = "proposed"
    amount: Decimal | None = None
    currency: Currency = "CZK"
    hours: Decimal | None = None


ENTITIES: dict[str, type[CanonicalEntity]] = {
    cls.entity: cls
    for cls in (
        Account,
        Contact,
        Opportunity,
        Quote,
        Order,
        Invoice,
        Payment,
        Product,
        Pricelist,
        Contract,
        Activity,
        Project,
        Milestone,
        Task,
        Timesheet,
        ResourceBooking,
        Risk,
        ChangeRequest,
    )
}


def entity_class(name: str) -> type[CanonicalEntity]:
    """The contract class for an entity name (exact canonical name)."""
    try:
        return ENTITIES[name]
    except KeyError:
        from spojka.core.errors import ValidationError

        raise ValidationError(
            f"unknown entity {name!r}; known: {', '.join(sorted(ENTITIES))}"
        ) from None
