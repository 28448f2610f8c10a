"""The DNS wire format (RFC 1035) as far as the embedded DNS server needs it: read a query,
write a reply with A or PTR answers, and look at (or re-number) an upstream's reply that is
relayed as it came.

    query = parse_query(packet)          # WireError(rcode) when a reply should say why
    reply(query, answers=[a_record("172.18.0.2")])
    rcode_of(packet), is_authoritative(packet), with_id(packet, 0x1234)

Names are handled as text: labels joined by dots, no trailing dot. A label holding a dot or
a byte outside ASCII cannot be a container's name: it decodes to something no lookup finds.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

TYPE_A, TYPE_PTR, TYPE_MX, TYPE_AAAA, TYPE_OPT = 1, 12, 15, 28, 41
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
QR, AA, TC, RD, RA, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0010
OPCODE_MASK = 0x7800
HEADER = struct.Struct("!6H")  # id, flags, qdcount, ancount, nscount, arcount
RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
UDP_MIN = 512  # what a UDP reply may take when the client announced no more (RFC 1035)
TCP_MAX = 65534
TO_QUESTION = 0xC00C  # a compression pointer to the question's name (right after the header)


class WireError(ValueError):
    """A packet that is not a query this server takes; `rcode` is what the reply says."""

    def __init__(self, message: str, rcode: int = FORMERR) -> None:
        super().__init__(message)
        self.rcode = rcode


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    name: str  # "web.net1" (as asked: case kept; "" is the root)
    qtype: int
    qclass: int
    question: bytes  # the question section as received, echoed in the reply
    udp_size: int = 0  # the client's EDNS0 buffer size; 0 without EDNS0

    def limit(self, tcp: bool) -> int:
        """The largest reply the client takes."""
        return TCP_MAX if tcp else max(UDP_MIN, self.udp_size)


def read_name(packet: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` (compression pointers followed) and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    size, jumps, pos = 0, 0, offset
    while True:
        if pos >= len(packet):
            raise WireError("name runs past the packet")
        length = packet[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(packet) or jumps > 32:
                raise WireError("bad compression pointer")
            end = pos + 2 if end is None else end
            pos = ((length & 0x3F) << 8) | packet[pos + 1]
            jumps += 1
            continue
        if length & 0xC0:
            raise WireError("unknown label type")
        pos += 1
        if length == 0:
            break
        if pos + length > len(packet):
            raise WireError("label runs past the packet")
        size += length + 1
        if size > 255:
            raise WireError("name longer than 255 bytes")
        labels.append(packet[pos : pos + length].decode("ascii", "replace"))
        pos += length
    return ".".join(labels), pos if end is None else end


def encode_name(name: str) -> bytes:
    out = b""
    text = name.strip(".")
    for label in text.split(".") if text else []:
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise WireError(f"bad label in {name!r}", SERVFAIL)
        out += bytes([len(raw)]) + raw
    if len(out) + 1 > 255:
        raise WireError(f"name too long: {name!r}", SERVFAIL)
    return out + b"\x00"


def _skip_rr(packet: bytes, offset: int) -> tuple[int, int, int]:
    """(type, class, offset after) of the resource record at `offset`."""
    _, pos = read_name(packet, offset)
    if pos + RR_FIXED.size > len(packet):
        raise WireError("truncated resource record")
    rtype, rclass, _, rdlength = RR_FIXED.unpack_from(packet, pos)
    pos += RR_FIXED.size + rdlength
    if pos > len(packet):
        raise WireError("truncated resource record data")
    return rtype, rclass, pos


def parse_query(packet: bytes) -> Query | None:
    """The query in `packet`; None for what gets no reply at all (a response, a runt).
    WireError for a query that gets an error reply (see `error_reply`)."""
    if len(packet) < HEADER.size:
        return None
    ident, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(packet)
    if flags & QR:
        return None
    if flags & OPCODE_MASK:
        raise WireError("only standard queries are served", NOTIMP)
    if qdcount != 1:
        raise WireError("a query asks one question")
    name, pos = read_name(packet, HEADER.size)
    if pos + 4 > len(packet):
        raise WireError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", packet, pos)
    question = packet[HEADER.size : pos + 4]
    pos += 4
    udp_size = 0
    for index in range(ancount + nscount + arcount):
        rtype, rclass, pos = _skip_rr(packet, pos)
        if rtype == TYPE_OPT and index >= ancount + nscount:
            udp_size = rclass  # an OPT record's class is the sender's UDP payload size
    return Query(ident, flags, name, qtype, qclass, question, udp_size)


def reply(
    query: Query,
    rcode: int = NOERROR,
    answers: Sequence[bytes] = (),
    *,
    recursion_available: bool = True,
    limit: int = TCP_MAX,
    tcp: bool = True,
) -> bytes:
    """A reply to `query` (its id, opcode, RD and CD, its question) with these answer records.
    Answers that do not fit `limit` are dropped from the end; over UDP the reply then says
    it was truncated (TC), so that the client may ask again over TCP."""
    flags = QR | (query.flags & (OPCODE_MASK | RD | CD)) | rcode
    if recursion_available:
        flags |= RA
    kept = list(answers)
    while True:
        size = HEADER.size + len(query.question) + sum(len(a) for a in kept)
        if size <= limit or not kept:
            break
        kept.pop()
        flags |= 0 if tcp else TC
    header = HEADER.pack(query.id, flags, 1, len(kept), 0, 0)
    return header + query.question + b"".join(kept)


def error_reply(packet: bytes, rcode: int) -> bytes | None:
    """A reply with no question for a query that could not be read (FORMERR, NOTIMP)."""
    if len(packet) < HEADER.size:
        return None
    ident, flags = struct.unpack_from("!HH", packet)
    return HEADER.pack(ident, QR | (flags & (OPCODE_MASK | RD)) | rcode, 0, 0, 0, 0)


def a_record(address: str, ttl: int) -> bytes:
    """An A record owned by the question's name."""
    rdata = IPv4Address(address).packed
    return struct.pack("!H", TO_QUESTION) + RR_FIXED.pack(TYPE_A, CLASS_IN, ttl, 4) + rdata


def ptr_record(target: str, ttl: int) -> bytes:
    """A PTR record owned by the question's name, pointing at `target`."""
    rdata = encode_name(target)
    fixed = RR_FIXED.pack(TYPE_PTR, CLASS_IN, ttl, len(rdata))
    return struct.pack("!H", TO_QUESTION) + fixed + rdata


def packet_id(packet: bytes) -> int:
    return int(struct.unpack_from("!H", packet)[0])


def with_id(packet: bytes, ident: int) -> bytes:
    return struct.pack("!H", ident) + packet[2:]


def rcode_of(packet: bytes) -> int:
    return int(struct.unpack_from("!H", packet, 2)[0]) & 0x000F


def is_authoritative(packet: bytes) -> bool:
    return bool(struct.unpack_from("!H", packet, 2)[0] & AA)
