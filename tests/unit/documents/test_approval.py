"""The approval matrix: auto / one approver / two approvers with finance."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from spojka.core.errors import ConfigError, ValidationError
from spojka.documents.approval import ApprovalMatrix, plan
from spojka.documents.intake_flow import CONFIG_FILE, load_config

MATRIX = ApprovalMatrix()


def test_small_matched_clean_invoice_is_approved_automatically() -> None:
    result = plan(MATRIX, amount=D("20000"), matched=True, checks_passed=True)
    assert result.automatic and result.roles == ()


@pytest.mark.parametrize(("matched", "checks"), [(False, True), (True, False)])
def test_small_invoice_with_a_problem_needs_one_approver(matched: bool, checks: bool) -> None:
    result = plan(MATRIX, amount=D("500"), matched=matched, checks_passed=checks)
    assert result.roles == ("approver",)


def test_middle_amount_needs_one_approver_and_large_two_with_finance() -> None:
    assert plan(MATRIX, amount=D("20000.01"), matched=True, checks_passed=True).roles == (
        "approver",
    )
    assert plan(MATRIX, amount=D("200000"), matched=True, checks_passed=True).roles == ("approver",)
    big = plan(MATRIX, amount=D("200000.01"), matched=True, checks_passed=True)
    assert big.roles == ("approver", "finance")
    assert "finance" in big.reason


def test_configured_limits_and_roles_apply() -> None:
    matrix = ApprovalMatrix.from_mapping(
        {"auto_limit": "5000", "single_limit": 50000, "finance_role": "cfo"}
    )
    assert plan(matrix, amount=D(6000), matched=True, checks_passed=True).roles == ("approver",)
    assert plan(matrix, amount=D(60000), matched=True, checks_passed=True).roles == (
        "approver",
        "cfo",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"auto_limit": 300000}, "must not exceed single_limit"),
        ({"single_limit": -1, "auto_limit": -2}, "must not be negative"),
        ({"auto_limit": "lots"}, "must be a number"),
        ({"finance_role": " "}, "finance_role must not be empty"),
        ({"limit": 1}, "unknown keys"),
    ],
)
def test_a_bad_matrix_is_refused_with_a_clear_error(raw: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ApprovalMatrix.from_mapping(raw)


def test_negative_amount_is_refused() -> None:
    with pytest.raises(ValidationError, match="negative"):
        plan(MATRIX, amount=D(-1), matched=True, checks_passed=True)


def test_the_ap_configuration_file_is_read_and_validated(tmp_path: Path) -> None:
    assert load_config(tmp_path).matrix == ApprovalMatrix()  # no file: the defaults
    (tmp_path / CONFIG_FILE).write_text(
        "approval: {auto_limit: 5000, finance_role: cfo}\n"
        "tolerances: {suppliers: {'25596641': {price_pct: 3}}}\n"
        "three_way: false\n",
        encoding="utf-8",
    )
    cfg = load_config(tmp_path)
    assert cfg.matrix.auto_limit == D(5000) and cfg.matrix.finance_role == "cfo"
    assert cfg.tolerances.for_(supplier_ico="25596641").price_pct == D(3)
    assert cfg.three_way is False
    (tmp_path / CONFIG_FILE).write_text("approval: {auto_limit: 999999}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"documents-ap\.yaml: approval matrix: auto_limit"):
        load_config(tmp_path)
    (tmp_path / CONFIG_FILE).write_text("limits: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(tmp_path)
