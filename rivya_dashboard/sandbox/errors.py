"""The sandbox's one error type; dispatch (api.py) renders it as the §3.1 envelope."""


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def validation_failed(message: str) -> ApiError:
    return ApiError(400, "validation_failed", message)


def not_found(what: str, public_id: str) -> ApiError:
    return ApiError(404, "not_found", f"No {what} {public_id!r} exists for this API key's account.")
