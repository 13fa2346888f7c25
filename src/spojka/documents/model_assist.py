"""Asking a language model for the fields the rules left empty or unsure (optional).

Only with a model endpoint in ``documents-ap.yaml`` (any OpenAI-compatible chat-completions
server)::

    model:
      url: http://127.0.0.1:8080/v1     # …/chat/completions is appended
      model: qwen2.5-7b-instruct
      api_key: env:SPOJKA_MODEL_KEY     # a secret reference (env:, file:, db:); optional
      min_confidence: 0.75              # fields below this are "unsure"
      price_per_1k_prompt: 0.02         # cost per 1,000 tokens, counted into the run record
      price_per_1k_completion: 0.06

Fields an XML states are never asked for. Every answer is validated like any other value: it
must parse (dates, amounts) and must not make a check fail that passed without it; a value
that does is rejected and named. Accepted values are kept as a new document version with the
source ``model``. Without a model configured nothing here runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from spojka.core.db import transaction
from spojka.core.errors import PermanentError, SpojkaError, TransientError, ValidationError
from spojka.core.logging import get_logger
from spojka.documents.checks import run_checks
from spojka.documents.models import HEADER_FIELDS, FieldInfo, Invoice
from spojka.documents.service import (
    get_document,
    invoice_from_output,
    parse_field_value,
    save_version,
    versions,
)

log = get_logger("spojka.documents.model")
MAX_TEXT_CHARS = 12_000


@dataclass(frozen=True)
class ModelEndpoint:
    url: str
    model: str
    api_key: str | None = None  # a secret reference, resolved when asking
    min_confidence: float = 0.75
    answer_confidence: float = 0.6
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    timeout: float = 60.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ModelEndpoint:
        allowed = set(cls.__dataclass_fields__)
        unknown = set(raw) - allowed
        if unknown:
            raise ValidationError(
                f"model: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})"
            )
        if not raw.get("url") or not raw.get("model"):
            raise ValidationError("model: url and model are required")
        if not str(raw["url"]).startswith(("http://", "https://")):
            raise ValidationError(f"model: url must be http(s), got {raw['url']!r}")
        try:
            return cls(**{k: v for k, v in raw.items()})
        except TypeError as exc:
            raise ValidationError(f"model: {exc}") from None


@dataclass
class ModelAnswer:
    values: dict[str, Any]
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def cost(self, endpoint: ModelEndpoint) -> float:
        return (
            self.prompt_tokens * endpoint.price_per_1k_prompt
            + self.completion_tokens * endpoint.price_per_1k_completion
        ) / 1000


@dataclass
class AssistResult:
    asked: list[str] = field(default_factory=list)
    accepted: dict[str, Any] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    cost: float = 0.0
    version: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "accepted": {k: str(v) for k, v in self.accepted.items()},
            "rejected": self.rejected,
            "cost": round(self.cost, 6),
            "version": self.version,
            "error": self.error,
        }


def unsure_fields(output: Mapping[str, Any], min_confidence: float) -> list[str]:
    """Header fields that are empty or read with low confidence (never XML or a person's)."""
    infos = output.get("fields") or {}
    invoice = invoice_from_output(dict(output))
    unsure = []
    for path in HEADER_FIELDS:
        info = infos.get(path) or {}
        if info.get("source") in ("xml", "person"):
            continue
        if invoice.get(path) in (None, "") or float(info.get("confidence", 0)) < min_confidence:
            unsure.append(path)
    return unsure


def _prompt(text: str, fields: list[str]) -> list[dict[str, str]]:
    return [
        {
            "role": "system",
            "content": "You read supplier invoices (Czech, Slovak, English, German). Answer "
            "with one JSON object whose keys are exactly the requested field paths. Dates as "
            "YYYY-MM-DD, amounts as plain numbers with a dot, IBAN without spaces. Use null "
            "when the document does not state a value; never guess.",
        },
        {
            "role": "user",
            "content": "Fields: " + ", ".join(fields) + "\n\nDocument text:\n" + text,
        },
    ]


def _json_object(content: str) -> dict[str, Any]:
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", content, re.S)
    raw = fenced.group(1) if fenced else content[content.find("{") : content.rfind("}") + 1]
    try:
        value = json.loads(raw)
    except ValueError:
        raise PermanentError("the model's answer is not a JSON object") from None
    if not isinstance(value, dict):
        raise PermanentError("the model's answer is not a JSON object")
    return value


def ask(
    endpoint: ModelEndpoint, *, text: str, fields: list[str], api_key: str | None
) -> ModelAnswer:
    """One chat-completions call asking for ``fields`` from the document ``text``."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {
        "model": endpoint.model,
        "messages": _prompt(text[:MAX_TEXT_CHARS], fields),
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }
    url = endpoint.url.rstrip("/") + "/chat/completions"
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=endpoint.timeout)
    except httpx.HTTPError as exc:
        raise TransientError(f"model endpoint {endpoint.url} unreachable: {exc}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(f"model endpoint answered {response.status_code}")
    if response.status_code >= 400:
        raise PermanentError(f"model endpoint refused the request ({response.status_code})")
    try:
        payload = response.json()
        content = payload["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise PermanentError(
            "the model endpoint did not answer in the chat-completions shape"
        ) from None
    usage = payload.get("usage") or {}
    return ModelAnswer(
        values=_json_object(str(content)),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def _failures(invoice: Invoice) -> set[tuple[str, str | None]]:
    return {(type(f).__name__, f.field) for f in run_checks(invoice)}


def validate(
    invoice: Invoice, values: Mapping[str, Any], *, asked: list[str], confidence: float
) -> tuple[Invoice, dict[str, Any], list[dict[str, Any]]]:
    """Take each answered value that parses and makes no check fail that passed without it."""
    accepted: dict[str, Any] = {}
    rejected: list[dict[str, Any]] = []
    current = invoice.model_copy(deep=True)
    before = {(name, f) for name, f in _failures(current) if name != "MissingField"}
    for path, raw in values.items():
        if raw in (None, ""):
            continue
        if path not in asked:
            rejected.append({"field": path, "value": raw, "reason": "not asked for"})
            continue
        try:
            typed = parse_field_value(path, str(raw).strip())
        except ValidationError as exc:
            rejected.append({"field": path, "value": raw, "reason": exc.message})
            continue
        candidate = current.model_copy(deep=True)
        candidate.set(path, typed, FieldInfo(source="model", confidence=confidence))
        after = {(name, f) for name, f in _failures(candidate) if name != "MissingField"}
        new = sorted(after - before, key=str)
        if new:
            rejected.append(
                {
                    "field": path,
                    "value": raw,
                    "reason": "fails " + ", ".join(f"{n} ({f})" for n, f in new),
                }
            )
            continue
        current, before = candidate, after
        accepted[path] = typed
    return current, accepted, rejected


def assist_document(app: Any, *, document_id: int, endpoint: ModelEndpoint) -> AssistResult:
    """Ask the model about one stored document's unsure fields; keep what validates."""
    from spojka.documents.reader import read_layout

    result = AssistResult()
    with app.sessions() as session:
        doc = get_document(session=session, document_id=document_id)
        latest = versions(session=session, document_id=document_id)[-1]
        output = dict(latest.invoice)
        read_path, stored = doc.read_path, doc.stored_path
        api_key = app.secrets.resolve(session, endpoint.api_key) if endpoint.api_key else None
    if read_path == "xml":
        return result  # an XML states its fields; the model is never asked to guess them
    result.asked = unsure_fields(output, endpoint.min_confidence)
    if not result.asked:
        return result
    layout = read_layout(Path(stored))
    text = layout.text if layout is not None else ""
    try:
        answer = ask(endpoint, text=text, fields=result.asked, api_key=api_key)
    except SpojkaError as exc:
        result.error = exc.message
        log.warning("documents.model_failed", document=document_id, error=exc.message)
        return result
    result.cost = answer.cost(endpoint)
    invoice, result.accepted, result.rejected = validate(
        invoice_from_output(output),
        answer.values,
        asked=result.asked,
        confidence=endpoint.answer_confidence,
    )
    if result.accepted:
        with transaction(app.sessions) as session:
            version = save_version(
                session=session,
                document_id=document_id,
                invoice=invoice,
                actor="model",
                reason=f"{endpoint.model} filled {', '.join(sorted(result.accepted))}",
            )
            result.version = version.version
    log.info(
        "documents.model_assist",
        document=document_id,
        asked=len(result.asked),
        accepted=len(result.accepted),
        rejected=len(result.rejected),
        cost=result.cost,
    )
    return result
