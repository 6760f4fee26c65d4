"""A streaming response whose body is produced while the request body is still being read."""

from __future__ import annotations

from typing import Any

from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Send

__all__ = ["DuplexStream"]


class _DuplexStreamingResponse(ASGIStreamingResponse):
    """Streams the body without listening for a disconnect.

    Litestar's streaming response reads ``receive()`` to notice a disconnect, which would take
    the request body from under a handler that is still reading it. Here the body's own
    iterator reads the request, and sees a disconnect there.
    """

    __slots__ = ()

    async def send_body(self, send: Send, receive: Receive) -> None:
        """Send the chunks as the iterator yields them."""
        await self._stream(send)


class DuplexStream(Stream):
    """``Stream`` for bodies that read the request while they are sent (NDJSON in, NDJSON out)."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        """Litestar's streaming response, without the disconnect listener."""
        response = super().to_asgi_response(*args, **kwargs)
        response.__class__ = _DuplexStreamingResponse
        return response
