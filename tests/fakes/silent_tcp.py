"""A TCP server that accepts connections and never answers: a hung Redis (or any hung peer)."""

import socket
import threading


class SilentTcpServer:
    """`with SilentTcpServer() as server:` listens on 127.0.0.1:`server.port`, takes every
    connection and reads nothing back to it, until closed."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-tcp", daemon=True)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return  # closed
            self.connections.append(connection)  # held open, never answered

    def __enter__(self) -> "SilentTcpServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._sock.close()
        for connection in self.connections:
            connection.close()
