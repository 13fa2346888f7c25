"""The approval matrix for supplier invoices (pure rules).

Default (issue 7): up to 20,000 Kč auto-approve when the invoice matched its order and every
check passed; up to 200,000 Kč one approver; above that two approvers in sequence, the second
from finance. Limits and roles are configurable and validated with clear errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from spojka.core.errors import ValidationError


@dataclass(frozen=True)
class ApprovalMatrix:
    auto_limit: Decimal = Decimal("20000")
    single_limit: Decimal = Decimal("200000")
    approver_role: str = "approver"
    finance_role: str = "finance"

    def __post_init__(self) -> None:
        for name in ("auto_limit", "single_limit"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                try:
                    object.__setattr__(self, name, Decimal(str(value)))
                except ArithmeticError:
                    raise ValidationError(
                        f"approval matrix: {name} must be a number (got {value!r})"
                    ) from None
            if getattr(self, name) < 0:
                raise ValidationError(f"approval matrix: {name} must not be negative")
        if self.auto_limit > self.single_limit:
            raise ValidationError(
                f"approval matrix: auto_limit {self.auto_limit} must not exceed "
                f"single_limit {self.single_limit}"
            )
        for name in ("approver_role", "finance_role"):
            if not str(getattr(self, name)).strip():
                raise ValidationError(f"approval matrix: {name} must not be empty")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ApprovalMatrix:
        allowed = {"auto_limit", "single_limit", "approver_role", "finance_role"}
        unknown = set(raw) - allowed
        if unknown:
            raise ValidationError(
                f"approval matrix: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})"
            )
        return cls(**dict(raw))


@dataclass(frozen=True)
class ApprovalPlan:
    """Who must approve, in order; empty ``roles`` means approved automatically."""

    roles: tuple[str, ...]
    reason: str

    @property
    def automatic(self) -> bool:
        return not self.roles


def plan(
    matrix: ApprovalMatrix, *, amount: Decimal, matched: bool, checks_passed: bool
) -> ApprovalPlan:
    if amount < 0:
        raise ValidationError(f"invoice amount must not be negative (got {amount})")
    if amount <= matrix.auto_limit and matched and checks_passed:
        return ApprovalPlan((), f"{amount} ≤ {matrix.auto_limit}, matched, all checks passed")
    if amount <= matrix.single_limit:
        why = (
            f"{amount} ≤ {matrix.single_limit}"
            if amount > matrix.auto_limit
            else f"{amount} ≤ {matrix.auto_limit} but not matched or a check failed"
        )
        return ApprovalPlan((matrix.approver_role,), f"one approver: {why}")
    return ApprovalPlan(
        (matrix.approver_role, matrix.finance_role),
        f"two approvers, one from finance: {amount} > {matrix.single_limit}",
    )
