"""Failures as PAI-style JSON: ``{"Code", "Message"}``, plus the DSL position for query errors.

Query errors keep their stable kebab-case key in ``ErrorCode`` (what the gallery and tests key
on) and carry the span and the caret rendering, so a client can point at the bad token.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmdm.adapters.errors import (AdapterError, ConflictError, InvalidParameterError,
                                  NotFoundError)
from mmdm.query import QueryError

from .responses import PaiJSONResponse


class ApiError(Exception):
    """A request the API refuses, with PAI's error code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad_parameter(name: str, message: str) -> ApiError:
    return ApiError(400, f"InvalidParameter.{name}", message)


def query_error_body(err: QueryError) -> dict[str, Any]:
    body: dict[str, Any] = {"Code": "InvalidParameter.Query", "Message": err.message,
                            "ErrorCode": err.code, "Kind": err.kind, "Caret": err.render()}
    position = err.position()
    if position is not None and err.span is not None:
        body["Position"] = {"Line": position[0], "Column": position[1],
                            "Start": err.span.start, "End": err.span.end}
    if err.expected:
        body["Expected"] = list(err.expected)
    return body


def _json(status: int, body: dict[str, Any]) -> PaiJSONResponse:
    return PaiJSONResponse(body, status_code=status)


def _adapter_status(err: AdapterError) -> tuple[int, str]:
    if isinstance(err, NotFoundError):
        return 404, "NotFound"
    if isinstance(err, ConflictError):
        return 409, "Conflict"
    if isinstance(err, InvalidParameterError):
        return 400, f"InvalidParameter.{err.parameter}"
    if err.is_input_error:
        return 400, "InvalidParameter"
    return (503, "ServiceUnavailable") if err.retriable else (500, "InternalError")


HTTP_CODES = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
              405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}


def http_error(request: Request, exc: StarletteHTTPException) -> PaiJSONResponse:
    """Starlette's own errors in PAI's shape. An action mmdm does not implement (no route)
    says so, so PAI's SDK raises a clear error instead of mapping an empty body."""
    code = HTTP_CODES.get(exc.status_code, f"Http{exc.status_code}")
    message = str(exc.detail)
    if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        code = "NotImplemented" if request.url.path.startswith(("/api/", "/mmdm/api/")) else code
        message = f"mmdm does not implement {request.method} {request.url.path}"
    return _json(exc.status_code, {"Code": code, "Message": message})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> PaiJSONResponse:
        return http_error(request, exc)

    @app.exception_handler(ApiError)
    async def _api(_: Request, err: ApiError) -> PaiJSONResponse:
        return _json(err.status, {"Code": err.code, "Message": err.message})

    @app.exception_handler(QueryError)
    async def _query(_: Request, err: QueryError) -> PaiJSONResponse:
        return _json(400, query_error_body(err))

    @app.exception_handler(AdapterError)
    async def _adapter(_: Request, err: AdapterError) -> PaiJSONResponse:
        status, code = _adapter_status(err)
        return _json(status, {"Code": code, "Message": err.message})

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> PaiJSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        return _json(400, {"Code": f"InvalidParameter.{where or 'Request'}",
                           "Message": f"{where}: {first.get('msg', 'invalid request')}"})
