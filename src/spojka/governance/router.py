"""API of governance: tokens (admin) and the audit log (auditor)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, status
from sqlalchemy.orm import Session

from spojka.api.auth import ADMIN, AUDIT, Principal, get_session, require, token_cache
from spojka.governance import audit, tokens
from spojka.governance.models import AuditRead, TokenCreate, TokenCreated, TokenRead

router = APIRouter(tags=["governance"])


@router.get("/tokens", response_model=list[TokenRead])
def list_tokens(
    principal: Principal = require(ADMIN), session: Session = Depends(get_session)
) -> list[Any]:
    return tokens.list_tokens(session)


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(
    token_in: TokenCreate,
    principal: Principal = require(ADMIN),
    session: Session = Depends(get_session),
) -> TokenCreated:
    """Create a token; its secret is in this answer only."""
    token, plain = tokens.create(
        session, name=token_in.name, role=token_in.role, actor=principal.name
    )
    return TokenCreated(**TokenRead.model_validate(token).model_dump(), token=plain)


@router.delete("/tokens/{token_id}", response_model=TokenRead)
def revoke_token(
    token_id: int, principal: Principal = require(ADMIN), session: Session = Depends(get_session)
) -> Any:
    token = tokens.revoke(session, token_id=token_id, actor=principal.name)
    token_cache.clear()
    return token


@router.get("/audit", response_model=list[AuditRead])
def list_audit(
    limit: int = 100,
    object_type: str | None = None,
    object_id: str | None = None,
    principal: Principal = require(AUDIT),
    session: Session = Depends(get_session),
) -> list[Any]:
    return audit.list_entries(
        session, limit=min(limit, 1000), object_type=object_type, object_id=object_id
    )


@router.get("/audit/verify")
def verify_audit(
    principal: Principal = require(AUDIT), session: Session = Depends(get_session)
) -> dict[str, Any]:
    report = audit.verify(session)
    return {
        "ok": report.ok,
        "entries": report.entries,
        "problem": report.problem,
        "first_bad_seq": report.first_bad_seq,
    }
