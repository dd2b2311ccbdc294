"""A restartable threaded HTTP(S) server on 127.0.0.1: ``stop()`` closes the port (clients see
"connection refused", as with a KMS outage) and ``start()`` binds the same port again."""
from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        self.active: set = set()
        self.active_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        try:  # answers go out in two writes (headers, body): without this, Nagle + delayed ACK add 40 ms
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.active_lock:
            self.active.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.active_lock:
            self.active.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut kept-alive connections too: a stopped server must not keep answering pooled clients."""
        with self.active_lock:
            conns = list(self.active)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):  # clients that time out hang up: not an error
        pass


class RestartableServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], owner, ssl_context: ssl.SSLContext | None = None):
        self._handler = type(handler.__name__, (handler,), {"owner": owner})
        self._ssl = ssl_context
        self._srv: _Server | None = None
        self._thread: threading.Thread | None = None
        self.host, self.port = "127.0.0.1", 0

    @property
    def running(self) -> bool:
        return self._srv is not None

    def start(self) -> None:
        if self._srv is not None:
            return
        srv = _Server((self.host, self.port), self._handler)
        if self._ssl is not None:
            srv.socket = self._ssl.wrap_socket(srv.socket, server_side=True)
        self.port = srv.server_address[1]
        self._srv = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"standin-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        srv, self._srv = self._srv, None
        if srv is None:
            return
        srv.shutdown()
        srv.drop_connections()
        try:
            srv.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        srv.server_close()
        if self._thread is not None:
            self._thread.join(5)
