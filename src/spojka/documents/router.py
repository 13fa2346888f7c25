"""API of documents: intake (store once, read, check, start the AP run), extraction without
storing, a stored document with its versions, corrections by a person (which teach the
supplier's hints), and the exception worklist with its release.

Files travel as the raw request body (``Content-Type`` of the file, ``?filename=``), so no
multipart parser is needed; mind SPOJKA_MAX_BODY_BYTES for large scans.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, status
from sqlalchemy.orm import Session

from spojka.api.auth import APPROVE, OPERATE, READ, Principal, get_app, get_session, require
from spojka.bootstrap import Spojka
from spojka.core.errors import ValidationError
from spojka.documents import service, worklist
from spojka.documents.checks import InvoiceCheckFailed
from spojka.documents.intake import take_in
from spojka.documents.reader import extract_file

router = APIRouter(tags=["documents"])
_SAFE_SUFFIXES = {".pdf", ".xml", ".isdoc", ".isdocx", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def _failures(items: list[InvoiceCheckFailed]) -> list[dict[str, Any]]:
    return [
        {"check": type(f).__name__, "code": f.code, "field": f.field, "message": f.message}
        for f in items
    ]


async def _to_temp(request: Request, filename: str, folder: Path) -> Path:
    body = await request.body()
    if not body:
        raise ValidationError("the request body is empty: send the file as the body")
    suffix = Path(filename).suffix.lower()
    if suffix not in _SAFE_SUFFIXES:
        raise ValidationError(f"filename: {suffix or 'no'} extension is not a supported document")
    path = folder / Path(filename).name
    path.write_bytes(body)
    return path


@router.post("/documents/extract")
async def extract_document(
    request: Request,
    filename: str = Query(..., description="Original file name, e.g. faktura.pdf"),
    principal: Principal = require(READ),
) -> dict[str, Any]:
    """Read one document and return its fields (the JSON of `spojka documents extract`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = await _to_temp(request, filename, Path(tmp))
        out = extract_file(path).to_output()
    out["file"] = filename
    return out


@router.post("/documents", status_code=status.HTTP_201_CREATED)
async def add_document(
    request: Request,
    filename: str = Query(..., description="Original file name, e.g. faktura.pdf"),
    flow: bool = Query(True, description="Start the documents.ap_intake run (false: only store)"),
    principal: Principal = require(OPERATE),
    app: Spojka = Depends(get_app),
) -> dict[str, Any]:
    """Store a document once by content hash, read and check it, and start its AP run;
    duplicates are named. The same file again returns the same document and run."""
    with tempfile.TemporaryDirectory() as tmp:
        path = await _to_temp(request, filename, Path(tmp))
        taken = take_in(app, path, actor=principal.name, filename=filename, start_flow=flow)
    result = taken.result
    return {
        "id": taken.document_id,
        "new_file": result.new_file,
        "duplicate_of": result.duplicate_of.id if result.duplicate_of else None,
        "read_path": result.document.read_path,
        "invoice": result.extraction.to_output() if result.extraction else None,
        "failures": _failures(result.failures),
        "workflow_id": taken.workflow_id,
    }


@router.get("/documents/exceptions")
def list_exceptions(
    principal: Principal = require(READ),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Documents whose run waits for a person: the failed checks and the waiting decision."""
    return [item.as_dict() for item in worklist.list_exceptions(session)]


@router.get("/documents/{document_id}")
def get_document(
    document_id: int,
    principal: Principal = require(READ),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """A stored document: current fields (value, source, confidence), the checks it fails now,
    the exception it waits in (if any) and every kept version."""
    return worklist.document_view(session, document_id)


@router.post("/documents/{document_id}/release")
def release_document(
    document_id: int,
    reason: str | None = Body(None, embed=True),
    minutes_spent: float | None = Body(None, embed=True, ge=0),
    principal: Principal = require(APPROVE),
    app: Spojka = Depends(get_app),
) -> dict[str, Any]:
    """Release a document waiting as an exception (after correcting it): its run continues
    with the current version. 409 when the document is not waiting."""
    return worklist.release(
        app,
        document_id=document_id,
        actor=principal.name,
        role=principal.role.value,
        reason=reason,
        minutes_spent=minutes_spent,
    )


@router.post("/documents/{document_id}/corrections")
def correct_document(
    document_id: int,
    fields: dict[str, str] = Body(..., embed=True, description="field path → correct value"),
    reason: str | None = Body(None, embed=True),
    principal: Principal = require(OPERATE),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """A person corrects fields; a new version is kept and the supplier's hints learn."""
    version, hints = service.correct_document(
        session=session,
        document_id=document_id,
        corrections=fields,
        actor=principal.name,
        reason=reason,
    )
    return {
        "version": version.version,
        "learned": [
            {"field": h.field, "kind": h.kind, "value": h.value, "version": h.version}
            for h in hints
        ],
    }
