"""How a channel says an attempt failed: in words, and whether trying again can help."""

from __future__ import annotations


class SendFailure(Exception):
    """An attempt that did not deliver. `retryable`: a later attempt may (a server down, a temporary refusal);
    otherwise the message is a dead letter at once (an address the server refuses for good, bad credentials)."""

    def __init__(
        self, message: str, *, retryable: bool, code: int | None = None, retry_after: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.retry_after = retry_after  # an HTTP Retry-After the gateway sent

    def as_error(self) -> dict[str, object]:
        return {"message": self.message, "retryable": self.retryable, "code": self.code}
