"""A small, strict JSON-RPC client for Tryton 8.2.

Everything Tryton-specific stops here: typed values (``Decimal``, dates, ``timedelta``…)
are converted both ways, the user's preferences become the context of every call (Tryton's
record rules need the company in it), an expired session is renewed once, and every failure
leaves as one of Spojka's errors. Parameters and results are never logged: they carry
personal data.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx

from spojka.connectors.base import parse_retry_after
from spojka.core.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    PermanentError,
    SpojkaError,
    TransientError,
)
from spojka.core.logging import get_logger
from spojka.core.tracing import outgoing_headers

log = get_logger("spojka.connectors.tryton")

Domain = list[Any]


def encode(value: Any) -> Any:
    """Python → Tryton JSON (the ``__class__`` objects of ``trytond.protocols.jsonrpc``)."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            # Tryton stores naive UTC; an aware value is converted, never silently shifted.
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """Tryton JSON → Python; unknown ``__class__`` objects are left as dicts."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__class__")
    if kind == "Decimal":
        return Decimal(value["decimal"])
    if kind == "datetime":
        return dt.datetime(
            value["year"],
            value["month"],
            value["day"],
            value["hour"],
            value["minute"],
            value["second"],
            value["microsecond"],
        )
    if kind == "date":
        return dt.date(value["year"], value["month"], value["day"])
    if kind == "time":
        return dt.time(value["hour"], value["minute"], value["second"], value["microsecond"])
    if kind == "timedelta":
        return dt.timedelta(seconds=value["seconds"])
    if kind == "bytes":
        return base64.b64decode(value["base64"])
    return {k: decode(v) for k, v in value.items()}


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


def map_rpc_error(method: str, error: Any) -> SpojkaError:
    """Turn Tryton's ``error`` member into Spojka's error classes."""
    if isinstance(error, list) and error and isinstance(error[0], str):
        kind, args = error[0], error[1] if len(error) > 1 else None
        if kind == "UserError" and isinstance(args, list) and args:
            message = str(args[0])
            description = str(args[1]) if len(args) > 1 and args[1] else ""
            return PermanentError(
                f"Tryton rejected {method}: {message}",
                detail={"tryton_error": kind, "message": message, "description": description},
            )
        if kind == "UserWarning" and isinstance(args, list) and len(args) > 1:
            return PermanentError(
                f"Tryton asks for confirmation on {method}: {args[1]}",
                detail={"tryton_error": kind, "warning": str(args[0]), "message": str(args[1])},
            )
        if kind == "ConcurrencyException":
            return ConflictError(
                f"Tryton record changed by someone else during {method}: {args}",
                detail={"tryton_error": kind},
            )
        if kind in ("TimeOutException", "RateLimitException"):
            return TransientError(f"Tryton is busy ({kind}) on {method}", retry_after=5.0)
        text = _first_line(kind)
        if "database is locked" in text or "OperationalError" in text:
            return TransientError(f"Tryton database busy on {method}: {text}", retry_after=1.0)
        return PermanentError(
            f"Tryton failed on {method}: {text}", detail={"tryton_error": "server"}
        )
    return PermanentError(f"Tryton failed on {method}: {str(error)[:300]}")


class TrytonClient:
    """One authenticated session against one Tryton database."""

    def __init__(
        self,
        url: str,
        database: str,
        user: str,
        password: str,
        *,
        language: str = "en",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self.database = database
        self.user = user
        self._password = password
        self.language = language
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._session: str | None = None
        self.user_id: int | None = None
        self.context: dict[str, Any] = {}
        self.logins = 0

    def __repr__(self) -> str:
        return f"TrytonClient(url={self.url!r}, database={self.database!r}, user=***)"

    def __enter__(self) -> TrytonClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport ---------------------------------------------------------------------------

    @property
    def rpc_url(self) -> str:
        return f"{self.url}{self.database}/rpc/"

    def _post(self, url: str, method: str, params: list[Any], *, auth: bool) -> httpx.Response:
        headers = {"Content-Type": "application/json", **outgoing_headers()}
        if auth and self._session:
            headers["Authorization"] = f"Session {self._session}"
        payload = {"id": next(self._ids), "method": method, "params": encode(params)}
        started = time.perf_counter()
        try:
            response = self._http.post(url, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientError(f"Tryton at {self.url} timed out on {method}") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"Tryton at {self.url} is unreachable ({type(exc).__name__})", retry_after=5.0
            ) from exc
        log.debug(
            "tryton.rpc",
            method=method,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    def _result(self, method: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 429:
            raise TransientError(
                f"Tryton rate-limited {method}", retry_after=_retry_after(response) or 10.0
            )
        if status >= 500:
            raise TransientError(
                f"{status} from Tryton on {method}", retry_after=_retry_after(response)
            )
        if status == 403:
            raise ForbiddenError(f"403 from Tryton: user {self.user!r} may not call {method}")
        if status == 404:
            raise ConfigError(f"Tryton database '{self.database}' not found at {self.url}")
        if status >= 400:
            raise PermanentError(f"{status} from Tryton on {method}: {_first_line(response.text)}")
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(f"Tryton answered {method} with non-JSON content") from exc
        if "error" in body and body["error"] is not None:
            raise map_rpc_error(method, body["error"])
        return decode(body.get("result"))

    # -- session -----------------------------------------------------------------------------

    def login(self) -> None:
        """Open a session and load the user's preferences as the call context."""
        response = self._post(
            self.rpc_url,
            "common.db.login",
            [self.user, {"password": self._password}, self.language],
            auth=False,
        )
        if response.status_code in (401, 403):
            raise AuthError("401 from Tryton: login or password rejected")
        result = self._result("common.db.login", response)
        user_id, token = int(result[0]), str(result[1])
        raw = f"{self.user}:{user_id}:{token}".encode()
        self._session = base64.b64encode(raw).decode("ascii")
        self.user_id = user_id
        self.logins += 1
        preferences = self._result(
            "model.res.user.get_preferences",
            self._post(self.rpc_url, "model.res.user.get_preferences", [True, {}], auth=True),
        )
        # The same context the Tryton client sends: company, employee, language, …
        self.context = dict(preferences or {})

    def logout(self) -> None:
        if self._session is None:
            return
        try:
            self._post(self.rpc_url, "common.db.logout", [], auth=True)
        finally:
            self._session = None

    @property
    def company_id(self) -> int:
        """The user's current company (from the preferences loaded at login)."""
        self._ensure_session()
        return int(self.context["company"])

    @property
    def employee_id(self) -> int | None:
        self._ensure_session()
        employee = self.context.get("employee")
        return int(employee) if employee else None

    def _ensure_session(self) -> None:
        with self._lock:
            if self._session is None:
                self.login()

    def call(self, method: str, *params: Any) -> Any:
        """Call a database method (``model.x.y``, ``wizard.…``); renews an expired session once."""
        self._ensure_session()
        session = self._session
        response = self._post(self.rpc_url, method, list(params), auth=True)
        if response.status_code == 401:
            # The server forgot the session (timeout, restart, logout). Tryton checks the
            # session before dispatching, so repeating the call after a new login is safe.
            log.info("tryton.session_expired", method=method)
            with self._lock:
                if self._session == session:
                    self._session = None
                    self.login()
            response = self._post(self.rpc_url, method, list(params), auth=True)
            if response.status_code == 401:
                raise AuthError("401 from Tryton: session rejected right after login")
        return self._result(method, response)

    def server_call(self, method: str, *params: Any) -> Any:
        """Call a server method (``common.server.version``, ``common.db.list``)."""
        return self._result(method, self._post(f"{self.url}rpc/", method, list(params), auth=False))

    def server_version(self) -> str:
        return str(self.server_call("common.server.version"))

    # -- model helpers: the context always goes last -----------------------------------------

    def _context(self, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self.context, **(extra or {})}

    def model(
        self, model: str, method: str, *args: Any, context: Mapping[str, Any] | None = None
    ) -> Any:
        if self._session is None:
            self._ensure_session()
        return self.call(f"model.{model}.{method}", *args, self._context(context))

    def search(
        self,
        model: str,
        domain: Domain,
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        order_param = [list(o) for o in order] if order else None
        return list(
            self.model(model, "search", domain, offset, limit, order_param, context=context)
        )

    def search_read(
        self,
        model: str,
        domain: Domain,
        fields: Sequence[str],
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        order_param = [list(o) for o in order] if order else None
        return list(
            self.model(
                model,
                "search_read",
                domain,
                offset,
                limit,
                order_param,
                list(fields),
                context=context,
            )
        )

    def iter_search_read(
        self,
        model: str,
        domain: Domain,
        fields: Sequence[str],
        *,
        page_size: int = 200,
        order: Sequence[tuple[str, str]] = (("id", "ASC"),),
        context: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Page through a search with a stable order (id) so a page never repeats."""
        last_id = 0
        while True:
            page = self.search_read(
                model,
                [*domain, ("id", ">", last_id)] if domain else [("id", ">", last_id)],
                fields,
                limit=page_size,
                order=order,
                context=context,
            )
            yield from page
            if len(page) < page_size:
                return
            last_id = int(page[-1]["id"])

    def read(
        self,
        model: str,
        ids: Sequence[int],
        fields: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return list(self.model(model, "read", list(ids), list(fields), context=context))

    def create(
        self,
        model: str,
        values: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        return [int(i) for i in self.model(model, "create", list(values), context=context)]

    def write(
        self,
        model: str,
        ids: Sequence[int],
        values: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.model(model, "write", list(ids), dict(values), context=context)

    def delete(
        self, model: str, ids: Sequence[int], *, context: Mapping[str, Any] | None = None
    ) -> None:
        self.model(model, "delete", list(ids), context=context)

    def button(
        self,
        model: str,
        button: str,
        ids: Sequence[int],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Click a workflow button (``quote``, ``confirm``, ``post``…) on records."""
        return self.model(model, button, list(ids), context=context)
