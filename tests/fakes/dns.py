"""DNS answers for the tests: this machine has no network, so public names cannot resolve here.

`FakeDns.install(monkeypatch)` replaces socket.getaddrinfo for the test. Names given to `answer()`
resolve to those addresses (successive lookups take successive answers, the last one repeating:
a name can be made to change its answer, as in DNS rebinding). IP literals and `localhost` go to
the system resolver; any other name does not exist, so no test ever asks a real DNS server.
"""

from __future__ import annotations

import ipaddress
import socket


class FakeDns:
    def __init__(self, real_getaddrinfo) -> None:
        self._real = real_getaddrinfo
        self._answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []  # the faked names looked up, in order

    @classmethod
    def install(cls, monkeypatch) -> FakeDns:
        fake = cls(socket.getaddrinfo)
        monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
        return fake

    def answer(self, name: str, *answers: list[str]) -> None:
        """`answer("a.example", ["93.184.215.14"])`; more lists: the answers of the next lookups."""
        self._answers[name.lower()] = [list(addresses) for addresses in answers]

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name == "localhost" or _is_ip_literal(name):
            return self._real(host, port, family, type, proto, flags)
        answers = self._answers.get(name.lower().rstrip("."))
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        self.lookups.append(name)
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        infos = []
        for address in addresses:
            if ipaddress.ip_address(address).version == 6:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0), 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0))))
        return infos


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
