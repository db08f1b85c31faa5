"""The egress rule (apps/core/egress.py): which addresses webhooks may go to, and pinning.

Every request here goes to loopback; other addresses are only ever judged, never connected to.
"""

import datetime
import ipaddress
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.core.egress import (
    ADDRESS_NOT_ALLOWED_MESSAGE,
    AddressNotAllowed,
    address_is_public,
    egress_address_allowed,
    egress_url_error,
    pinned_session,
)
from tests.fakes.dns import FakeDns

PUBLIC = "93.184.215.14"

NOT_PUBLIC = [
    "169.254.169.254",  # cloud metadata (link-local)
    "127.0.0.1", "127.0.0.2", "0.0.0.0", "10.0.0.5", "172.16.3.4", "192.168.1.1",
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "192.0.2.1", "198.18.0.1",  # documentation, benchmarking
    "224.0.0.1", "239.1.1.1", "240.0.0.1", "255.255.255.255",  # multicast, reserved, broadcast
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "ff0e::1", "2001:db8::1",
    "::ffff:10.0.0.5", "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b::a00:5",  # NAT64 to 10.0.0.5
    "2002:a00:5::",  # 6to4 from 10.0.0.5
]


@pytest.fixture
def dns(monkeypatch):
    return FakeDns.install(monkeypatch)


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_internal_addresses_are_not_public(address):
    assert not address_is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_global_unicast_addresses_are_public(address):
    assert address_is_public(ipaddress.ip_address(address))


def test_the_operator_can_allow_private_networks(settings):
    settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16", "fd00:1::/64"]

    allowed = [a for a in ["10.20.3.4", "::ffff:10.20.3.4", "fd00:1::9", "10.21.0.1", "169.254.169.254", PUBLIC]
               if egress_address_allowed(ipaddress.ip_address(a))]

    assert allowed == ["10.20.3.4", "::ffff:10.20.3.4", "fd00:1::9", PUBLIC]


def test_a_url_is_refused_unless_http_and_every_address_of_its_host_is_allowed(dns, settings):
    settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = []
    dns.answer("hooks.example", [PUBLIC, "2606:4700::1111"])
    dns.answer("internal.example", ["10.1.2.3"])
    dns.answer("mixed.example", [PUBLIC, "10.1.2.3"])

    assert egress_url_error("https://hooks.example/notifier") == ""
    assert egress_url_error(f"http://{PUBLIC}:8080/n") == ""
    assert egress_url_error("ftp://hooks.example/notifier") == "Use an http:// or https:// URL."
    for url in ["http://internal.example/", "http://mixed.example/", "http://nowhere.invalid/",
                "http://localhost:5432/", "http://127.0.0.1:5432/", "http://[::1]/", "http://169.254.169.254/"]:
        # The same answer whether the name does not exist or is internal: no map of internal DNS.
        assert egress_url_error(url) == ADDRESS_NOT_ALLOWED_MESSAGE, url


def test_a_name_is_resolved_once_and_the_connection_goes_to_the_address_checked(dns, receiver):
    # Rebinding: the first answer passes the check; an HTTP client resolving again would get the
    # second, an address the rule refuses (127.0.0.2: only 127.0.0.1 is allowed in the tests).
    dns.answer("rebind.example", ["127.0.0.1"], ["127.0.0.2"])
    url = f"http://rebind.example:{receiver.port}/hook"

    response = pinned_session(resolve_timeout=2).post(url, json={"n": 1}, timeout=5)

    assert response.status_code == 200 and response.url == url
    assert dns.lookups == ["rebind.example"]
    [request] = receiver.requests
    assert request.headers["Host"] == f"rebind.example:{receiver.port}"  # the name, not the address
    with pytest.raises(AddressNotAllowed):  # the next send resolves again, and is refused
        pinned_session(resolve_timeout=2).post(url, json={"n": 2}, timeout=5)
    assert len(receiver.requests) == 1


def test_when_a_checked_address_refuses_the_connection_the_next_is_tried(dns, receiver, settings):
    settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    dns.answer("two.example", ["127.0.0.2", "127.0.0.1"])  # nothing listens on 127.0.0.2

    response = pinned_session(resolve_timeout=2).post(f"http://two.example:{receiver.port}/hook", timeout=5)

    assert response.status_code == 200 and len(receiver.requests) == 1


def test_a_name_that_does_not_resolve_is_a_connection_error(dns):
    with pytest.raises(requests.ConnectionError, match=r"Cannot resolve nowhere\.invalid"):
        pinned_session(resolve_timeout=2).post("http://nowhere.invalid/hook", timeout=5)


# --- TLS: the pinned connection still sends the name (SNI) and checks the certificate against it.

@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    file: str  # the CA certificate, for `verify=`
    directory: Path

    def issue(self, name: str) -> str:
        """A PEM file with a certificate for `name` signed by this CA, and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _certificate_builder(name, key.public_key(), self.cert.subject)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        path = self.directory / f"{name}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return str(path)


class TlsReceiver:
    """An HTTPS server on 127.0.0.1 presenting `cert_chain`; records the SNI names and Host headers."""

    def __init__(self, cert_chain: str) -> None:
        self.server_names: list[str] = []
        self.hosts: list[str] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_chain)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
        hosts = self.hosts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hosts.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]

    def __enter__(self):
        threading.Thread(target=self._httpd.serve_forever, name="tls-receiver", daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()


def _certificate_builder(common_name: str, public_key, issuer: x509.Name) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> CertificateAuthority:
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Notifier test CA")])
    cert = (
        _certificate_builder("Notifier test CA", key.public_key(), name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(key=key, cert=cert, file=str(directory / "ca.pem"), directory=directory)


def test_https_to_a_pinned_address_sends_the_name_and_verifies_the_certificate_for_it(dns, ca):
    dns.answer("hooks.example", ["127.0.0.1"])

    with TlsReceiver(ca.issue("hooks.example")) as server:
        url = f"https://hooks.example:{server.port}/hook"
        response = pinned_session(resolve_timeout=2).post(url, data=b"{}", verify=ca.file, timeout=5)

    assert response.status_code == 200
    assert server.server_names == ["hooks.example"]
    assert server.hosts == [f"hooks.example:{server.port}"]


def test_https_to_a_pinned_address_refuses_a_certificate_for_another_name(dns, ca):
    dns.answer("hooks.example", ["127.0.0.1"])

    with TlsReceiver(ca.issue("other.example")) as server:
        with pytest.raises(requests.exceptions.SSLError, match=r"hooks\.example"):
            pinned_session(resolve_timeout=2).post(f"https://hooks.example:{server.port}/hook", data=b"{}",
                                                   verify=ca.file, timeout=5)
        assert server.hosts == []
