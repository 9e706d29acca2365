"""The API's error answers, in the shapes the real service uses (see NOTES.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.emulator.validation import Detail


class ApiError(Exception):
    """An error answer: raised by handlers, turned into a JSON response by the app."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"object": "error", "message": message, "type": kind, "param": None, "code": None}


def invalid_request(message: str, status: int = 400) -> ApiError:
    return ApiError(status, error_body(message))


def invalid_model(message: str) -> ApiError:
    """What the real API answers for a model it does not know (HTTP 400, seen in the wild:
    ``{"message": "Invalid model: ...", "type": "invalid_model", "code": "1500"}``)."""
    return ApiError(
        400,
        {
            "object": "error",
            "message": message,
            "type": "invalid_model",
            "param": None,
            "code": "1500",
        },
    )


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, error_body(f"{what} {ident} not found"))


def validation_failed(details: Sequence[Detail]) -> ApiError:
    return ApiError(422, {"detail": list(details)})


def unauthorized(request_id: str) -> ApiError:
    return ApiError(401, {"message": "Unauthorized", "request_id": request_id})


def rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        429,
        error_body("Requests rate limit exceeded", "rate_limit_error"),
        {"Retry-After": str(retry_after)},
    )


_SERVER_ERRORS = {
    500: ("Internal server error", "internal_server_error"),
    502: ("Bad gateway", "service_unavailable_error"),
    503: ("Service unavailable, please retry", "service_unavailable_error"),
}


def server_error(status: int) -> ApiError:
    message, kind = _SERVER_ERRORS.get(status, ("Server error", "internal_server_error"))
    return ApiError(status, error_body(message, kind))
