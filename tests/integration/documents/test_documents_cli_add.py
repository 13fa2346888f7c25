"""`spojka documents add` stores each file once and names duplicates."""

from __future__ import annotations

import random
from pathlib import Path
from types import ModuleType

from cryptography.fernet import Fernet
from typer.testing import CliRunner

from spojka.cli.main import app
from spojka.core.db import upgrade


def test_add_stores_once_and_flags_the_same_invoice_in_another_file(
    sqlite_url: str, tmp_path: Path, docgen: ModuleType
) -> None:
    upgrade(sqlite_url)
    env = {
        "SPOJKA_DATA_DIR": str(tmp_path / "data"),
        "SPOJKA_DATABASE_URL": sqlite_url,
        "SPOJKA_SECRET_KEY": Fernet.generate_key().decode(),
    }
    doc = docgen.make_doc(random.Random(8), "sk")
    a, b = tmp_path / "a.pdf", tmp_path / "b.xml"
    a.write_bytes(docgen.render_pdf(doc, "stacked", random.Random(1)))
    b.write_bytes(docgen.ubl_xml(doc))  # the same invoice as an e-invoice
    runner = CliRunner()
    first = runner.invoke(app, ["documents", "add", "--no-flow", str(a), str(b)], env=env)
    assert first.exit_code == 0, first.output
    assert "document 1 (text)" in first.stdout
    assert "document 2 (xml)" in first.stdout and "duplicate of document 1" in first.stdout
    assert "DuplicateInvoice" in first.stdout
    again = runner.invoke(app, ["documents", "add", "--no-flow", str(a)], env=env)
    assert again.exit_code == 0, again.output
    assert "already stored as document 1" in again.stdout
    fix = runner.invoke(
        app,
        ["documents", "correct", "1", "supplier.name=Stavebniny Ďurčo, s.r.o.", "--actor", "jana"],
        env=env,
    )
    assert fix.exit_code == 0, fix.output
    assert "version 2 saved" in fix.stdout and "learned for supplier" in fix.stdout
    shown = runner.invoke(app, ["documents", "hints", doc.supplier.ico], env=env)
    assert shown.exit_code == 0, shown.output
    assert "Stavebniny Ďurčo, s.r.o." in shown.stdout and "jana" in shown.stdout
