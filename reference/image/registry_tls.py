"""TLS for the registry client, with Go's words for what goes wrong.

Go's net/http tells a plain HTTP server apart from other handshake failures by the server's
first bytes ("HTTP/"): `http: server gave HTTP response to HTTPS client`. Python's SSLSocket
hides those bytes, so TLS runs here over an SSLObject driven by hand (TLSSocket), which offers
http.client the few socket methods it uses. The host name is matched after the handshake, as
Go's VerifyHostname does, so that a mismatch reads like Go's message too.

`tls_context` reads `<certs_dir>/<host[:port]>/` like Docker's ReadCertsDirectory: every
`*.crt` is a CA added to the system roots, `X.cert` + `X.key` a client certificate.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from reference.errors import ConfigError

log = logging.getLogger(__name__)
BLOCK = 1 << 16
HANDSHAKE_TIMEOUT = 10.0  # Docker's registry transport: TLSHandshakeTimeout


class GoError(Exception):
    """The tail of a Go error (after `Get "URL": `); the session wraps it into its URL."""


def tls_context(directory: Path, *, verify: bool) -> ssl.SSLContext:
    """System roots plus the `*.crt` files of `directory`; client pairs `X.cert` + `X.key`."""
    if verify:
        context = ssl.create_default_context()  # system roots (~0.1 s to load), TLS >= 1.2
        context.check_hostname = False  # matched after the handshake instead, for Go's messages
    else:  # no roots needed: nothing is verified
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return context
    except OSError as e:
        raise ConfigError(f"cannot read certificates: {e.strerror}", obj=str(directory)) from None
    client_loaded = False
    for name in names:
        path = directory / name
        if name.endswith(".crt"):
            try:
                context.load_verify_locations(cafile=str(path))
            except ssl.SSLError:  # Go's AppendCertsFromPEM: a file without certificates adds none
                log.warning("no certificate in %s", path)
        elif name.endswith(".cert"):
            key = name[: -len(".cert")] + ".key"
            if key not in names:
                raise ConfigError(
                    f"missing key {key} for client certificate {name}. "
                    "CA certificates must use the extension .crt",
                    obj=str(directory),
                )
            if not client_loaded:  # OpenSSL holds one chain per key type: the first pair wins
                context.load_cert_chain(str(path), str(directory / key))
                client_loaded = True
        elif name.endswith(".key") and name[: -len(".key")] + ".cert" not in names:
            raise ConfigError(
                f"missing client certificate {name[: -len('.key')]}.cert for key {name}",
                obj=str(directory),
            )
    return context


def hostname_problem(cert: Mapping[str, Any], host: str) -> str | None:
    """Go's VerifyHostname on a verified peer certificate: None if it is valid for `host`."""
    sans: list[tuple[str, str]] = list(cert.get("subjectAltName", ()))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names = [value for kind, value in sans if kind == "DNS"]
        if any(_match_hostname(n, host) for n in names):
            return None
        valid = ", ".join(names)
    else:
        ips = [value.strip() for kind, value in sans if kind == "IP Address"]
        if not ips:
            return (
                f"x509: cannot validate certificate for {host} "
                "because it doesn't contain any IP SANs"
            )
        if any(ipaddress.ip_address(ip) == address for ip in ips):
            return None
        valid = ", ".join(str(ipaddress.ip_address(ip)) for ip in ips)
    if not valid:
        return f"x509: certificate is not valid for any names, but wanted to match {host}"
    return f"x509: certificate is valid for {valid}, not {host}"


def _match_hostname(pattern: str, host: str) -> bool:
    """Go's matchHostnames: same label count, a `*` only as the whole leftmost label."""
    pattern_parts = pattern.lower().split(".")
    host_parts = host.lower().removesuffix(".").split(".")
    if not pattern or not host or len(pattern_parts) != len(host_parts):
        return False
    return all(
        (i == 0 and p == "*") or p == h
        for i, (p, h) in enumerate(zip(pattern_parts, host_parts, strict=True))
    )


class TLSSocket:
    """The parts of a socket http.client uses, over an SSLObject fed from a plain socket."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, host: str) -> None:
        self._sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        sni = None if _is_ip(host) else host  # Go sends no SNI for an IP address either
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=sni)
        self._first = b""  # the server's first bytes, to recognise a plain HTTP answer

    def handshake(self, host: str, verify: bool) -> None:
        """Handshake (within Docker's TLSHandshakeTimeout); then match `host` if verifying."""
        timeout = self._sock.gettimeout()
        self._sock.settimeout(min(timeout or HANDSHAKE_TIMEOUT, HANDSHAKE_TIMEOUT))
        try:
            self._handshake()
        except TimeoutError:
            raise GoError("net/http: TLS handshake timeout") from None
        finally:
            self._sock.settimeout(timeout)
        if verify:
            problem = hostname_problem(self._tls.getpeercert() or {}, host)
            if problem:
                raise GoError(problem)

    def _handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill(record=True):
                    raise GoError("EOF") from None
            except ssl.SSLCertVerificationError as e:
                raise GoError(_x509_text(e)) from None
            except ssl.SSLError as e:
                if self._first.startswith(b"HTTP/"):
                    raise GoError("http: server gave HTTP response to HTTPS client") from None
                raise GoError(_tls_text(e)) from None
        self._flush()

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self._sock.sendall(data)

    def _fill(self, record: bool = False) -> bool:
        data = self._sock.recv(BLOCK)
        if record and len(self._first) < 5:
            self._first += data
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()
        return bool(data)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self._tls.write(view)
            except ssl.SSLWantReadError:  # TLS 1.3 post-handshake messages
                self._fill()
                continue
            view = view[sent:]
            self._flush()

    def recv_into(self, buffer: Any) -> int:
        while True:
            try:
                count: int = self._tls.read(len(buffer), buffer)  # type: ignore[assignment]
                return count
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    return 0  # EOF without close_notify: like SSLSocket's suppress_ragged_eofs
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return 0

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> BinaryIO:
        return io.BufferedReader(_Raw(self), BLOCK)

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def close(self) -> None:
        self._sock.close()


class _Raw(io.RawIOBase):
    def __init__(self, tls: TLSSocket) -> None:
        self._tls = tls

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._tls.recv_into(buffer)


def _x509_text(e: ssl.SSLCertVerificationError) -> str:
    # OpenSSL X509_V_ERR_* codes -> Go's x509 error texts.
    if e.verify_code in (2, 18, 19, 20, 21):
        return "x509: certificate signed by unknown authority"
    if e.verify_code in (9, 10):
        return "x509: certificate has expired or is not yet valid"
    return f"x509: {e.verify_message}"


def _tls_text(e: ssl.SSLError) -> str:
    reason = e.reason or ""
    for prefix in ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"):
        if reason.startswith(prefix):  # an alert the server sent
            alert = reason[len(prefix) :].lower().replace("_", " ")
            return "remote error: tls: " + {"unknown ca": "unknown certificate authority"}.get(
                alert, alert
            )
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        return "tls: first record does not look like a TLS handshake"
    if isinstance(e, ssl.SSLEOFError):
        return "EOF"
    return f"tls: {reason.lower().replace('_', ' ') or e}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
