"""Read one file into the canonical invoice, in the order of trust:
structured XML (alone, in a zip, or embedded in a PDF) → PDF text layer → OCR."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from spojka.core.errors import ValidationError
from spojka.core.logging import get_logger
from spojka.documents.layout import Layout, ocr_layout, pdf_layout, render_pdf_pages
from spojka.documents.models import Extraction, Invoice
from spojka.documents.rules import Hint, extract_from_layout
from spojka.documents.xml_readers import UnsupportedXml, read_invoice_xml

log = get_logger(__name__)

HintLookup = Callable[[str], Sequence[Hint]]
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")
_MIN_TEXT_CHARS = 40  # fewer letters than this on a PDF means a scan without a text layer


class UnreadableDocument(ValidationError):
    """The file is not an invoice Spojka can read (wrong type, damaged, empty)."""

    code = "unreadable_document"


def supplier_key(inv: Invoice) -> str | None:
    """How hints and duplicates recognise a supplier: IČO, else VAT id, else DIČ."""
    party = inv.supplier
    return party.ico or party.vat_id or party.dic


def _embedded_xml(data: bytes) -> tuple[str, Invoice] | None:
    """Factur-X / ZUGFeRD CII via the factur-x package, else any ISDOC/UBL/CII attachment."""
    # the package logs a warning for every PDF without Factur-X XML: ordinary here, not news
    logging.getLogger("factur-x").setLevel(logging.ERROR)
    try:
        from facturx import get_xml_from_pdf

        _name, xml = get_xml_from_pdf(io.BytesIO(data), check_xsd=False)
        if xml:
            return read_invoice_xml(xml)
    except UnsupportedXml:
        pass
    except Exception as exc:  # the package raises plain exceptions on odd PDFs
        log.debug("facturx could not read the PDF", error=str(exc))
    try:
        from pypdf import PdfReader

        attachments = PdfReader(io.BytesIO(data)).attachments
    except Exception:
        return None
    for name, contents in attachments.items():
        if not name.lower().endswith((".xml", ".isdoc")):
            continue
        for blob in contents:
            try:
                return read_invoice_xml(blob)
            except UnsupportedXml:
                continue
    return None


def _from_zip(data: bytes) -> tuple[str, Invoice]:
    """ISDOCX is a zip with the .isdoc inside (plus attachments)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.lower().endswith((".isdoc", ".xml")):
                try:
                    return read_invoice_xml(archive.read(name))
                except UnsupportedXml:
                    continue
    raise UnreadableDocument("the archive holds no ISDOC, CII or UBL invoice")


def _with_hints(layout: Layout, hints_for: HintLookup | None) -> Invoice:
    invoice = extract_from_layout(layout)
    if hints_for is None:
        return invoice
    key = supplier_key(invoice)
    hints = hints_for(key) if key else ()
    return extract_from_layout(layout, hints) if hints else invoice


def read_layout(path: Path, data: bytes | None = None) -> Layout | None:
    """The page layout of a PDF or image (None for XML), OCR when there is no text layer."""
    data = data if data is not None else path.read_bytes()
    if data.startswith(b"%PDF"):
        layout = pdf_layout(path)
        letters = sum(ch.isalpha() for ch in layout.text)
        if letters >= _MIN_TEXT_CHARS:
            return layout
        return ocr_layout(render_pdf_pages(path))
    if data.startswith(_IMAGE_MAGIC):
        from PIL import Image, ImageSequence

        image = Image.open(io.BytesIO(data))
        dpi = int(image.info.get("dpi", (300, 300))[0] or 300)
        frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
        return ocr_layout(frames, dpi=dpi)
    return None


def extract_file(path: Path, *, hints_for: HintLookup | None = None) -> Extraction:
    """Read one file; UnreadableDocument when it is none of the supported kinds."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(f"cannot open the file: {exc.strerror}") from None
    if not data.strip():
        raise UnreadableDocument("the file is empty")
    head = data.lstrip()[:200]
    if head.startswith(b"<") or head.startswith(b"\xef\xbb\xbf<"):
        try:
            fmt, invoice = read_invoice_xml(data)
        except UnsupportedXml as exc:
            raise UnreadableDocument(exc.message) from None
        return Extraction(file=str(path), source="xml", format=fmt, invoice=invoice)
    if data.startswith(b"PK\x03\x04"):
        fmt, invoice = _from_zip(data)
        return Extraction(file=str(path), source="xml", format=fmt, invoice=invoice)
    if data.startswith(b"%PDF"):
        embedded = _embedded_xml(data)
        if embedded is not None:
            return Extraction(file=str(path), source="xml", format=embedded[0], invoice=embedded[1])
    try:
        layout = read_layout(path, data)
    except UnreadableDocument:
        raise
    except Exception as exc:
        if isinstance(exc, ValidationError):
            raise
        raise UnreadableDocument(f"cannot read the document: {type(exc).__name__}: {exc}") from None
    if layout is None:
        raise UnreadableDocument("not a PDF, image, ISDOC, CII or UBL file")
    invoice = _with_hints(layout, hints_for)
    warnings = []
    if not layout.lines:
        warnings.append("no text found on the pages")
    return Extraction(
        file=str(path),
        source="ocr" if layout.source == "ocr" else "text",
        format=None,
        pages=layout.pages,
        invoice=invoice,
        warnings=warnings,
    )
