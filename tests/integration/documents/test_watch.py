"""`spojka documents watch`: files dropped into a folder are taken in once and moved on."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from types import ModuleType

from cryptography.fernet import Fernet
from typer.testing import CliRunner

from spojka.cli.main import app


def test_watched_folder_takes_in_new_files_and_sets_aside_what_it_cannot_read(
    tmp_path: Path, docgen: ModuleType
) -> None:
    env = {
        "SPOJKA_DATA_DIR": str(tmp_path / "data"),
        "SPOJKA_DATABASE_URL": f"sqlite:///{tmp_path / 'spojka.sqlite'}",
        "SPOJKA_SECRET_KEY": Fernet.generate_key().decode(),
    }
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    inbox = tmp_path / "scan"
    inbox.mkdir()
    doc = docgen.make_doc(random.Random(21), "cs")
    (inbox / "faktura.pdf").write_bytes(docgen.render_pdf(doc, "classic", random.Random(1)))
    (inbox / "poskozena.pdf").write_bytes(b"%PDF-1.4\nthis is not really a PDF\n")
    (inbox / "poznamky.txt").write_text("nákup kancelářských potřeb", encoding="utf-8")
    (inbox / "stahuje-se.pdf.part").write_bytes(b"%PDF-")  # still downloading: left alone

    first = runner.invoke(
        app, ["documents", "watch", str(inbox), "--once", "--settle", "0"], env=env
    )
    assert first.exit_code == 0, first.output
    assert "+ faktura.pdf: document 1 (new, run ap:" in first.stdout
    assert (inbox / "processed" / "faktura.pdf").exists()
    assert not (inbox / "faktura.pdf").exists()
    for name in ("poskozena.pdf", "poznamky.txt"):
        assert (inbox / "failed" / name).exists(), first.stdout
        assert (inbox / "failed" / f"{name}.reason.txt").read_text(encoding="utf-8").strip()
    assert "not an invoice file" in (inbox / "failed" / "poznamky.txt.reason.txt").read_text()
    assert (inbox / "stahuje-se.pdf.part").exists()

    # The same invoice dropped again under another name: stored once, the same run.
    shutil.copy(inbox / "processed" / "faktura.pdf", inbox / "faktura-kopie.pdf")
    again = runner.invoke(
        app, ["documents", "watch", str(inbox), "--once", "--settle", "0"], env=env
    )
    assert again.exit_code == 0, again.output
    assert "+ faktura-kopie.pdf: document 1 (already stored, run ap:" in again.stdout
    assert (inbox / "processed" / "faktura-kopie.pdf").exists()
    shown = runner.invoke(app, ["documents", "show", "1"], env=env)
    assert shown.exit_code == 0, shown.output
    assert doc.number in shown.stdout and "received" in shown.stdout
