"""`spojka documents extract … --format json`: the interface other tools rely on."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from spojka.cli.main import app

runner = CliRunner()
KEYS = {
    "file", "source", "number", "issue_date", "tax_point_date", "due_date", "currency",
    "variable_symbol", "iban", "supplier", "customer", "lines", "vat_breakdown",
    "total_without_vat", "total_vat", "total_with_vat", "amount_due", "fields",
}  # fmt: skip


def test_one_file_prints_one_object_with_every_field(dev_corpus: list[Path]) -> None:
    path = next(p for p in dev_corpus if p.suffix == ".isdoc")
    result = runner.invoke(app, ["documents", "extract", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= KEYS
    assert set(out["supplier"]) >= {"name", "ico", "dic", "vat_id", "address"}
    assert set(out["lines"][0]) >= {
        "description",
        "quantity",
        "unit",
        "unit_price",
        "vat_rate",
        "total",
    }
    assert set(out["vat_breakdown"][0]) == {"rate", "base", "tax"}
    assert isinstance(out["total_with_vat"], (int, float))
    assert out["fields"]["number"] == {"source": "xml", "confidence": 1.0}


def test_a_broken_file_gets_an_error_and_the_others_still_come_out(
    dev_corpus: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")
    good = [p for p in dev_corpus if p.suffix in (".pdf", ".xml")][:2]
    args = ["documents", "extract", str(good[0]), str(broken), str(good[1]), "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert [o["file"] for o in out] == [str(good[0]), str(broken), str(good[1])]
    assert "error" in out[1] and out[1]["error"]
    assert out[0]["number"] and out[2]["number"]
    assert "broken.pdf" in result.stderr


def test_check_reports_named_failures_with_exit_code(
    dev_corpus: list[Path], tmp_path: Path
) -> None:
    path = next(p for p in dev_corpus if p.suffix == ".xml")
    ok = runner.invoke(app, ["documents", "check", str(path), "--no-db", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["ok"] is True
    tampered = tmp_path / "tampered.xml"
    text = path.read_text()
    want = json.loads(path.with_name(path.name + ".expected.json").read_text())
    total = (
        f"{want['total_with_vat']:.2f}"
        if isinstance(want["total_with_vat"], float)
        else str(want["total_with_vat"])
    )
    tampered.write_text(
        text.replace(f">{total}</cbc:TaxInclusiveAmount>", ">1.00</cbc:TaxInclusiveAmount>")
    )
    bad = runner.invoke(app, ["documents", "check", str(tampered), "--no-db", "--format", "json"])
    assert bad.exit_code == 1
    assert "TotalsMismatch" in {f["check"] for f in json.loads(bad.stdout)["failures"]}
