"""Per-company configuration of the quote-to-cash flows, in YAML, checked at load.

One file holds what differs between companies: project templates (milestones, WBS, roles),
thresholds and approval limits, the people to notify, and where the systems are. Credentials
are never inline: ``token: env:NAME`` , ``file:PATH`` or ``db:NAME`` (the encrypted secret store).
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from spojka.core.errors import ConfigError

DEFAULTS = Path(__file__).parent / "defaults.yaml"
CONFIG_ENV = "SPOJKA_FLOWS_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Milestone(_Strict):
    name: str
    offset_days: int = Field(ge=0, description="days after the expected start")
    share: Decimal = Field(gt=0, le=1, description="share of the deal amount billed")


class WbsTask(_Strict):
    subject: str
    hours: Decimal = Field(ge=0)
    milestone: str
    role: str = "konzultant"


class Sla(_Strict):
    response_hours: int = Field(gt=0)
    resolution_hours: int = Field(gt=0)


class ProjectTemplate(_Strict):
    """How a won deal of one kind becomes a project."""

    title: str
    opportunity_types: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    hourly_rate: Decimal = Field(gt=0)
    milestones: list[Milestone] = Field(min_length=1)
    wbs: list[WbsTask] = Field(default_factory=list)
    sla: Sla
    product: str = Field(description="Tryton product billed by this project")
    billing: Literal["milestones", "time_and_material"] = Field(
        "milestones",
        description="milestones: each closed Redmine version is invoiced; time_and_material: "
        "the month's Redmine time entries are invoiced after the month ends",
    )
    rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description="time & material: hourly rate per Redmine time-entry activity "
        "(others bill at hourly_rate)",
    )

    @model_validator(mode="after")
    def _shares_and_milestones(self) -> ProjectTemplate:
        total = sum((m.share for m in self.milestones), Decimal(0))
        if total != Decimal(1):
            raise ValueError(f"milestone shares must add up to 1, they add up to {total}")
        names = {m.name for m in self.milestones}
        if len(names) != len(self.milestones):
            raise ValueError("milestone names must be unique")
        for activity, rate in self.rates.items():
            if rate <= 0:
                raise ValueError(f"rate of {activity!r} must be positive, it is {rate}")
        for task in self.wbs:
            if task.milestone not in names:
                raise ValueError(
                    f"WBS task {task.subject!r} names milestone {task.milestone!r}, "
                    f"which the template does not have (has: {', '.join(sorted(names))})"
                )
        return self


class Limits(_Strict):
    """Thresholds and the approval limits matrix."""

    min_deal_amount: Decimal = Decimal("0")
    overdue_block_amount: Decimal = Field(
        Decimal("0"), description="a customer owing more than this past due is blocked"
    )
    invoice_approval_above: Decimal = Field(
        Decimal("0"), description="invoice drafts above this wait for an approver"
    )
    change_request_approval_above: Decimal = Decimal("50000")
    vat_percent: Decimal = Decimal("21")
    payment_days: int = 14
    sla_at_risk_share: Decimal = Field(
        Decimal("0.25"),
        gt=0,
        lt=1,
        description="a ticket is at risk when less than this share of its SLA window is left",
    )
    dso_window_days: int = Field(90, gt=0, description="sales window of a customer's DSO")


class People(_Strict):
    pm_email: str
    pm_redmine_login: str | None = None
    account_owner_fallback: str
    redmine_manager_role: str = "Manager"


class RoleCapacity(_Strict):
    people: int = Field(ge=0)
    hours_per_week: Decimal = Field(gt=0)


class SystemRef(_Strict):
    url: str
    token: str | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = None
    webhook_secret: str | None = None

    @field_validator("token", "password", "webhook_secret")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("env:", "file:", "db:")):
            raise ValueError(
                "credentials are given by reference: 'env:NAME', 'file:PATH' or 'db:NAME'"
            )
        return value


class SmtpRef(_Strict):
    host: str = "127.0.0.1"
    port: int
    sender: str = "spojka@spojka-demo.cz"


class Systems(_Strict):
    crm: Literal["bottlecrm", "tryton"] = "bottlecrm"
    bottlecrm: SystemRef | None = None
    tryton: SystemRef | None = None
    redmine: SystemRef | None = None
    smtp: SmtpRef | None = None


class FlowsConfig(_Strict):
    company: str
    default_template: str
    templates: dict[str, ProjectTemplate] = Field(min_length=1)
    limits: Limits = Limits()
    people: People
    capacity: dict[str, RoleCapacity] = Field(default_factory=dict)
    systems: Systems = Systems()
    today: date | None = Field(None, description="fixed 'today' for demos and tests")

    @model_validator(mode="after")
    def _default_known(self) -> FlowsConfig:
        if self.default_template not in self.templates:
            raise ValueError(
                f"default_template {self.default_template!r} is not among the templates "
                f"({', '.join(sorted(self.templates))})"
            )
        return self


def _explain(exc: PydanticValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top)"
        lines.append(f"{where}: {error['msg']}")
    return f"flows configuration {source} is invalid:\n  " + "\n  ".join(lines)


def parse(data: Any, *, source: str = "<memory>") -> FlowsConfig:
    """Validate a mapping as the flows configuration; ConfigError names every bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"flows configuration {source} must be a mapping at the top")
    try:
        return FlowsConfig.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigError(_explain(exc, source)) from None


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: the company's file overrides the shipped defaults key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"flows configuration {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"flows configuration {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"flows configuration {path} must be a mapping at the top")
    return data


def config_path(data_dir: Path) -> Path:
    return Path(os.environ.get(CONFIG_ENV) or data_dir / "flows.yaml")


def load(data_dir: Path) -> FlowsConfig:
    """The shipped defaults overlaid with the company's ``flows.yaml`` (when present)."""
    data = read_yaml(DEFAULTS)
    path = config_path(data_dir)
    if path.exists():
        data = merge(data, read_yaml(path))
        return parse(data, source=str(path))
    return parse(data, source=str(DEFAULTS))


def write(data_dir: Path, override: dict[str, Any]) -> Path:
    """Write a company's override file (validated first) and return its path."""
    parse(merge(read_yaml(DEFAULTS), override), source="the new flows.yaml")
    path = config_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(override, allow_unicode=True, sort_keys=False), "utf-8")
    return path
