"""A TCP proxy on loopback in front of RabbitMQ that can hold publishes, as RabbitMQ does under a
memory or disk alarm: connections open as usual, but a connection that publishes is blocked (its
publish is not read, so no confirm comes) until the alarm clears."""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType

# An AMQP 0-9-1 method frame's class and method ids for basic.publish (60, 40).
_BASIC_PUBLISH = b"\x00\x3c\x00\x28"


class HoldingProxy:
    """Forwards 127.0.0.1:<port> to `target`. While held, a connection that sends a publish stops
    there, both ways, until `release()`; connections that do not publish are untouched."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []

    def hold(self) -> None:
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def start(self) -> None:
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def stop(self) -> None:
        self._closed.set()
        self._flowing.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client and _BASIC_PUBLISH in data:
                        self._flowing.wait()
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def __enter__(self) -> HoldingProxy:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
