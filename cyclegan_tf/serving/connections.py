"""The bundled server's HTTP connections: uvicorn with a deadline for request headers.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` seconds, but waits for ever
for the headers of a request that has started to arrive, and for a connection that never sends
anything. ``HeaderTimeoutProtocol`` closes such a connection after ``header_timeout_seconds`` with a
408 and one line in the log; the body's own deadline is the app's (``rest.create_app``), the number of
connections ``max_connections`` (more get 503 from uvicorn).
"""

import logging

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from cyclegan_tf.serving import limits

logger = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT_SECONDS = limits.HEADER_TIMEOUT_SECONDS
DEFAULT_MAX_CONNECTIONS = limits.MAX_CONNECTIONS
_KEEP_ALIVE_SECONDS = 5
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late.

    The clock starts when the connection opens, or when the first byte of a later request on it
    arrives, and stops once the request's headers are complete.
    """

    header_timeout_seconds = DEFAULT_HEADER_TIMEOUT_SECONDS

    def connection_made(self, transport):
        super().connection_made(transport)
        self._header_timer = None
        self._arm_header_timer()

    def data_received(self, data):
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer()
        else:
            self._disarm_header_timer()

    def connection_lost(self, exc):
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self):
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.header_timeout_seconds, self._header_timeout
            )

    def _disarm_header_timer(self):
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self):
        self._header_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        seconds = f"{self.header_timeout_seconds:g}"
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        logger.info(
            "Closed the connection of %s: no complete request headers in %s s "
            "(--header-timeout-seconds)",
            client,
            seconds,
        )
        message = (
            b'{"error": "the request headers did not arrive within %s s (--header-timeout-seconds)"}'
            % seconds.encode()
        )
        self.transport.write(_TIMEOUT_RESPONSE % (len(message), message))
        self.transport.close()


def protocol_class(header_timeout_seconds):
    """A ``HeaderTimeoutProtocol`` class with its deadline (uvicorn instantiates the class itself)."""
    if not float(header_timeout_seconds) > 0:
        raise ValueError(
            f"header_timeout_seconds must be positive. Received: {header_timeout_seconds}"
        )
    return type(
        "HeaderTimeoutProtocol",
        (HeaderTimeoutProtocol,),
        {"header_timeout_seconds": float(header_timeout_seconds)},
    )


def run_server(
    app,
    host,
    port,
    log_level="info",
    header_timeout_seconds=DEFAULT_HEADER_TIMEOUT_SECONDS,
    max_connections=DEFAULT_MAX_CONNECTIONS,
):
    """Serves ``app`` until interrupted.

    Args:
        app: the ASGI app (``rest.create_app``).
        host: str, the address to bind.
        port: int.
        log_level: str, uvicorn's log level (``info`` includes the access log).
        header_timeout_seconds: float, how long a connection may take to send a request's headers.
        max_connections: int, connections (and requests) at once; more are answered 503.
    """
    if int(max_connections) <= 0:
        raise ValueError(f"max_connections must be positive. Received: {max_connections}")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol_class(header_timeout_seconds),
        limit_concurrency=int(max_connections),
        timeout_keep_alive=_KEEP_ALIVE_SECONDS,
    )
    uvicorn.Server(config).run()
