"""Errors raised by adapters: whose fault it is and whether a retry can help."""

from __future__ import annotations


class AdapterError(Exception):
    """A failure at an adapter boundary (storage, model service, vector store, database).

    ``retriable`` says whether the same call may succeed later (timeouts, 429, 5xx);
    ``is_input_error`` says the caller sent something wrong and retrying cannot help.
    """

    def __init__(self, message: str, *, retriable: bool = False, is_input_error: bool = False,
                 retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retriable = retriable
        self.is_input_error = is_input_error
        self.retry_after = retry_after  # seconds, when the service said (Retry-After)


class ConfigError(AdapterError, ValueError):
    """Bad or missing connection settings; never retried."""

    def __init__(self, message: str):
        super().__init__(message, retriable=False, is_input_error=True)


class NotSupportedError(AdapterError, NotImplementedError):
    """A valid request this adapter cannot serve (e.g. a text query to an image-only model)."""

    def __init__(self, message: str):
        super().__init__(message, retriable=False, is_input_error=True)


class NotFoundError(AdapterError, LookupError):
    """A dataset, version, file meta, job or object that does not exist."""

    def __init__(self, message: str):
        super().__init__(message, retriable=False, is_input_error=True)


class AlreadyExistsError(AdapterError):
    """A dataset or tag definition name that is taken."""

    def __init__(self, message: str):
        super().__init__(message, retriable=False, is_input_error=True)


class ConflictError(AdapterError):
    """A change the current state refuses, e.g. deleting a version while a job runs on it."""

    def __init__(self, message: str):
        super().__init__(message, retriable=False, is_input_error=True)


class InvalidParameterError(AdapterError, ValueError):
    """A request parameter that is wrong; ``parameter`` names it (PAI's ``InvalidParameter.X``)."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message, retriable=False, is_input_error=True)
        self.parameter = parameter
