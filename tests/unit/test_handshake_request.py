"""The handshake request is read once (issue 23, point 2): ``config.hardening`` builds it
from the head uvicorn's parser read, instead of having websockets parse the head again.
It admits exactly what websockets' own parser admitted from the head uvicorn wrote out
for it, and refuses what that parser refused (the server answers those with 400)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.http11 import Request
from websockets.server import ServerProtocol

from config.hardening import handshake_request, head_size

Head = list[tuple[bytes, bytes]]
FRAMING = (b"\r", b"\n")


def parsed_by_websockets(target: bytes, headers: Head) -> Request | None:
    """What websockets made of the head uvicorn 0.54 wrote out for it."""
    head = b"GET " + target + b" HTTP/1.1\r\n" + b"".join(
        name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
    conn = ServerProtocol()
    conn.receive_data(head)
    events = conn.events_received()
    return events[0] if events and isinstance(events[0], Request) else None


def read_here(target: bytes, headers: Head) -> Request | None:
    return handshake_request({"method": "GET", "http_version": "1.1", "headers": headers},
                             target)


def _no_framing(value: bytes) -> bool:  # uvicorn's parser never hands over CR or LF
    return not any(byte in value for byte in FRAMING)


names = st.one_of(
    st.sampled_from([b"host", b"upgrade", b"connection", b"sec-websocket-key", b"x-a",
                     b"content-length", b"transfer-encoding", b"authorization"]),
    st.binary(min_size=1, max_size=8).filter(lambda n: _no_framing(n) and b":" not in n),
)
values = st.one_of(
    st.sampled_from([b"", b"0", b"1", b" 0 ", b"chunked", b"websocket", b"caf\xc3\xa9",
                     b"\xff", b"a\x00b", b"a\tb", b"\x7f"]),
    st.binary(max_size=12).filter(_no_framing),
)
targets = st.builds(lambda rest: b"/" + rest,
                    st.binary(max_size=20).filter(lambda t: _no_framing(t) and b" " not in t))


@given(targets, st.lists(st.tuples(names, values), max_size=12))
def test_the_request_is_the_one_websockets_would_have_parsed(target: bytes,
                                                             headers: Head) -> None:
    theirs, ours = parsed_by_websockets(target, headers), read_here(target, headers)
    if theirs is None:
        assert ours is None
        return
    assert ours is not None
    assert (ours.path, ours.method, ours.protocol) == (theirs.path, theirs.method,
                                                       theirs.protocol)
    assert list(ours.headers.raw_items()) == list(theirs.headers.raw_items())


def test_a_body_or_a_transfer_coding_is_refused() -> None:
    base = [(b"host", b"h"), (b"upgrade", b"websocket")]
    assert read_here(b"/ws/", [*base, (b"content-length", b"0")]) is not None
    assert read_here(b"/ws/", [*base, (b"content-length", b"5")]) is None
    assert read_here(b"/ws/", [*base, (b"transfer-encoding", b"chunked")]) is None
    assert read_here(b"/ws/caf\xc3\xa9", base) is None


def test_the_head_size_counts_every_header_line() -> None:
    assert head_size(b"/ws/", [(b"x-a", b"b" * 100)] * 10) > 10 * 100
