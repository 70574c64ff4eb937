"""Failures as PAI-style JSON: ``{"Code", "Message"}``, plus the DSL position for query errors.

Query errors keep their stable kebab-case key in ``ErrorCode`` (what the gallery and tests key
on) and carry the span and the caret rendering, so a client can point at the bad token.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mmdm.adapters.errors import AdapterError, NotFoundError
from mmdm.query import QueryError


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


def _json(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _adapter_status(err: AdapterError) -> tuple[int, str]:
    if isinstance(err, NotFoundError):
        return 404, "NotFound"
    if err.is_input_error:
        return 400, "InvalidParameter"
    return (503, "ServiceUnavailable") if err.retriable else (500, "InternalError")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, err: ApiError) -> JSONResponse:
        return _json(err.status, {"Code": err.code, "Message": err.message})

    @app.exception_handler(QueryError)
    async def _query(_: Request, err: QueryError) -> JSONResponse:
        return _json(400, query_error_body(err))

    @app.exception_handler(AdapterError)
    async def _adapter(_: Request, err: AdapterError) -> JSONResponse:
        status, code = _adapter_status(err)
        return _json(status, {"Code": code, "Message": err.message})

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        return _json(400, {"Code": f"InvalidParameter.{where or 'Request'}",
                           "Message": f"{where}: {first.get('msg', 'invalid request')}"})
