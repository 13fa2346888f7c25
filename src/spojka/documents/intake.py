"""Taking in one file from any door (CLI, API, watched folder, mailbox): store once, start the
AP run.

Storing commits before the run is queued, so the worker always finds the document. The run's
workflow id comes from the content hash: the same file taken in twice runs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spojka.bootstrap import Spojka
from spojka.core.db import transaction
from spojka.documents import intake_flow, service


@dataclass
class Taken:
    result: service.AddResult
    document_id: int
    content_hash: str
    workflow_id: str | None


def take_in(
    app: Spojka,
    path: Path,
    *,
    actor: str,
    filename: str | None = None,
    start_flow: bool = True,
    subject: str | None = None,
) -> Taken:
    with transaction(app.sessions) as session:
        result = service.add_document(
            session=session,
            data_dir=app.settings.data_dir,
            path=path,
            actor=actor,
            filename=filename,
        )
        doc_id, digest = result.document.id, result.document.content_hash
    started = None
    if start_flow:
        started = intake_flow.start(
            app.settings,
            document_id=doc_id,
            content_hash=digest,
            subject=subject or filename or path.name,
        )
    return Taken(result=result, document_id=doc_id, content_hash=digest, workflow_id=started)
