"""Where the workers may send a request whose address a tenant chose (webhook_url, status_webhook_url).

Any API key holder sets those URLs. Without a rule, they could make the workers POST to the cloud
metadata service (169.254.169.254), the database port, or an admin page on the internal network:
server-side request forgery. The rule: http or https, and every address the host resolves to is
public (globally routable unicast) or inside NOTIFIER_WEBHOOK_ALLOWED_NETWORKS, which self-hosted
installations set when their receivers live on a private network.

It is checked when a URL is set (the project gets a clear 4xx) and again at every send, because
DNS may answer otherwise later (rebinding). At send time the request goes to the very address
that was checked (PinnedAddressAdapter): letting the HTTP client resolve the name again would
reopen the window between check and connect.
"""

import ipaddress
import logging
import socket
import threading
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit, urlunsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from apps.core.deadline import deadline_pools

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# How long setting a URL through the API waits for DNS before refusing it.
URL_CHECK_RESOLVE_TIMEOUT_SECONDS = 3.0
# One message whether the host does not resolve or resolves to an internal address: telling them
# apart would let a tenant map the internal network's DNS through the API.
ADDRESS_NOT_ALLOWED_MESSAGE = (
    "The host must resolve, and only to public internet addresses: requests are not sent to "
    "private, loopback, link-local or other internal addresses."
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# NAT64's well-known prefix: on a NAT64 network 64:ff9b::a00:5 reaches 10.0.0.5.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressNotAllowed(Exception):
    """The host is, or resolves to, an address that requests may not go to."""


class HostUnresolvable(Exception):
    """The host does not resolve (no such name, no answer in time)."""


def address_is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only.

    Not private, loopback, link-local (cloud metadata), multicast, reserved, unspecified, shared
    (100.64/10), documentation, benchmarking, site-local; an IPv6 address standing for an IPv4 one
    (IPv4-mapped, NAT64, 6to4) is judged by that IPv4 address.
    """
    ip = _embedded_ipv4(ip) or ip
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return False
    # is_global alone is not enough on every Python: 3.11 calls multicast and 6to4 global.
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def egress_address_allowed(ip: IPAddress) -> bool:
    """Public, or inside one of the networks the operator allowed (NOTIFIER_WEBHOOK_ALLOWED_NETWORKS)."""
    if address_is_public(ip):
        return True
    candidates = {ip, _embedded_ipv4(ip) or ip}
    return any(candidate in network for network in _allowed_networks() for candidate in candidates)


def egress_addresses_resolve(host: str, port: int, *, timeout: float) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order of preference, all of them allowed.

    An IP literal is its own answer. Raises HostUnresolvable, or AddressNotAllowed if any address
    is not allowed (a name answering with one public and one internal address is refused whole).
    """
    addresses = _resolve(host, port, timeout=timeout)
    refused = [address for address in addresses if not egress_address_allowed(address)]
    if refused:
        # The addresses go to the operators' log, not to the tenant (see ADDRESS_NOT_ALLOWED_MESSAGE).
        logger.warning("Refused a request to %s: it resolves to %s, outside the allowed addresses.",
                       host, ", ".join(map(str, refused)))
        raise AddressNotAllowed(f"{host} is, or resolves to, an address that is not allowed.")
    return addresses


def egress_url_error(url: str, *, timeout: float = URL_CHECK_RESOLVE_TIMEOUT_SECONDS) -> str:
    """Why the workers may not send to `url`, or "" if they may. Resolves the host (DNS)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return "Enter a valid URL."
    if parts.scheme not in _DEFAULT_PORTS:
        return "Use an http:// or https:// URL."
    if not parts.hostname:
        return "Enter a valid URL."
    try:
        egress_addresses_resolve(parts.hostname, port, timeout=timeout)
    except (HostUnresolvable, AddressNotAllowed):
        return ADDRESS_NOT_ALLOWED_MESSAGE
    return ""


def pinned_session(*, resolve_timeout: float) -> requests.Session:
    """A requests session that sends only to allowed addresses, connecting to the one it checked."""
    session = requests.Session()
    adapter = PinnedAddressAdapter(resolve_timeout=resolve_timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class PinnedAddressAdapter(HTTPAdapter):
    """Resolves the host once per request, checks every address, and connects to a checked one.

    The request goes to the checked address: the URL carries it, while the Host header, TLS SNI and
    the certificate check carry the name, as if the client had resolved it itself. If a connection
    cannot be established, the next checked address is tried (as urllib3 does with the addresses
    it resolves). Raises AddressNotAllowed; a host that does not resolve is a
    requests.ConnectionError, like any unreachable host.
    """

    def __init__(self, *, resolve_timeout: float, **kwargs):
        self.resolve_timeout = resolve_timeout
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        deadline_pools(self.poolmanager)  # so a request_deadline can cut a receiver that drips

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        deadline_pools(manager)  # through HTTP(S)_PROXY too
        return manager

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        try:
            addresses = egress_addresses_resolve(host, parts.port or _DEFAULT_PORTS.get(parts.scheme, 80),
                                                 timeout=self.resolve_timeout)
        except HostUnresolvable as exc:
            raise requests.ConnectionError(str(exc), request=request) from exc
        if _ip_literal(host):
            return super().send(request, **kwargs)  # no name, so nothing DNS could swap
        url = request.url
        request.headers["Host"] = parts.netloc.rpartition("@")[2]  # the name (and port) as the URL gives it
        try:
            for address in addresses[:-1]:
                try:
                    return self._send_to(address, parts, request, url, **kwargs)
                except requests.ConnectionError as exc:
                    if not _not_connected(exc):
                        raise  # the request may have reached the receiver: never send it twice
            return self._send_to(addresses[-1], parts, request, url, **kwargs)
        finally:
            # Back to the request as the caller made it (a redirect it follows must not keep this Host).
            request.url = url
            del request.headers["Host"]

    def _send_to(self, address: IPAddress, parts: SplitResult, request, url: str, **kwargs) -> requests.Response:
        literal = f"[{address}]" if address.version == 6 else str(address)
        request.url = urlunsplit(parts._replace(netloc=f"{literal}:{parts.port}" if parts.port else literal))
        response = super().send(request, **kwargs)
        response.url = url
        return response

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https" and _ip_literal(host_params["host"]) and "Host" in request.headers:
            # A pinned request: SNI and the certificate check use the name, not the address (and
            # pools are then kept per address and name).
            pool_kwargs["server_hostname"] = request.headers["Host"].partition(":")[0]
        return host_params, pool_kwargs


def _not_connected(exc: requests.ConnectionError) -> bool:
    """True when no connection was established, so nothing was sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to (IPv4-mapped, NAT64, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return _networks(tuple(settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS))


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _resolve(host: str, port: int, *, timeout: float) -> list[IPAddress]:
    """The addresses of `host`, deduplicated in the resolver's order; within `timeout` seconds.

    getaddrinfo has no timeout of its own, so it runs in a daemon thread that is abandoned if it
    does not answer in time (the system resolver's own timeouts end it later).
    """
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    if not host:
        raise HostUnresolvable("The URL has no host.")
    outcome: dict = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=lookup, name="egress-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if "infos" not in outcome:
        reason = outcome.get("error") or f"no answer within {timeout:g} s"
        raise HostUnresolvable(f"Cannot resolve {host}: {reason}")
    addresses = [
        ipaddress.ip_address(sockaddr[0]) for family, _, _, _, sockaddr in outcome["infos"]
        if family in (socket.AF_INET, socket.AF_INET6)
    ]
    if not addresses:
        raise HostUnresolvable(f"Cannot resolve {host}: no address.")
    return list(dict.fromkeys(addresses))
