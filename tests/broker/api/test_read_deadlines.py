"""Read deadlines and malformed HTTP, over real sockets against a real ``brokkr serve``.

Covers: 50 connections trickling their headers are all answered with a D2 408 and closed by the
broker (a trickle would otherwise last 40 s) while /healthz keeps answering; a connection that
sends nothing is closed too; a trickled body gets a D2 408 ``request_timeout`` naming the body
deadline and is closed; bytes that are not HTTP get a D2 400 ``malformed_request`` instead of
uvicorn's plain text. How fast is left to ``bench/hostile.py``; these tests assert what happens.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.broker.conftest import ADMIN_PAK
from tests.cli.serving import HOST, Server, running_broker

HEADER_SECONDS = 1.0
BODY_SECONDS = 1.5
TRICKLERS = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("deadlines")
    env = {
        "BROKKR__BROKER__ADMIN_PAK": ADMIN_PAK,
        "BROKKR__LIMITS__HEADER_READ_TIMEOUT_SECONDS": str(HEADER_SECONDS),
        "BROKKR__LIMITS__BODY_READ_TIMEOUT_SECONDS": str(BODY_SECONDS),
    }
    with running_broker(workdir / "data", workdir, extra_env=env) as running:
        yield running


def _read_all(sock: socket.socket, timeout: float) -> bytes:
    """Everything until the broker closes the connection (a socket timeout fails the test)."""
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _error_body(response: bytes) -> dict[str, object]:
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), response
    parsed: dict[str, object] = json.loads(body)
    assert parsed["error"] == parsed["message"]
    return parsed


def test_trickled_headers_are_cut_off_while_healthz_answers(server: Server) -> None:
    answers: list[bytes] = []
    closed_by_broker: list[bool] = []

    def trickle() -> None:
        with socket.create_connection((HOST, server.port)) as sock:
            sock.settimeout(0.2)
            received = b""
            closed = False
            for byte in b"GET /healthz HTTP/1.1\r\nHost: broker\r\nX-Slow: " + b"a" * 200:
                try:
                    sock.sendall(bytes([byte]))
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                received += chunk
            closed_by_broker.append(closed)
            answers.append(received)

    threads = [threading.Thread(target=trickle) for _ in range(TRICKLERS)]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=server.url, timeout=5) as client:
        while any(thread.is_alive() for thread in threads):
            assert client.get("/healthz").status_code == 200
            time.sleep(0.05)
    # Every trickler was answered and closed by the broker before its 200 bytes were sent.
    assert closed_by_broker == [True] * TRICKLERS
    assert all(b"408" in answer.split(b"\r\n", 1)[0] for answer in answers), answers[:3]
    body = _error_body(answers[0])
    assert body["code"] == "request_timeout"
    assert body["details"] == {"timeout_seconds": HEADER_SECONDS}


def test_a_silent_connection_is_closed(server: Server) -> None:
    with socket.create_connection((HOST, server.port)) as sock:
        response = _read_all(sock, timeout=HEADER_SECONDS + 5)
    assert response.startswith(b"HTTP/1.1 408")
    assert _error_body(response)["details"] == {"timeout_seconds": HEADER_SECONDS}


def test_a_trickled_body_gets_408_and_is_closed(server: Server) -> None:
    head = (
        "POST /api/v1/generators HTTP/1.1\r\nHost: broker\r\n"
        f"Authorization: Bearer {ADMIN_PAK}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(head + b'{"name": "')
        response = _read_all(sock, timeout=BODY_SECONDS + 5)
    assert response.startswith(b"HTTP/1.1 408")
    body = _error_body(response)
    assert body["code"] == "request_timeout"
    assert body["details"] == {"timeout_seconds": BODY_SECONDS}


def test_malformed_http_gets_a_json_400(server: Server) -> None:
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        response = _read_all(sock, timeout=5)
    assert response.startswith(b"HTTP/1.1 400")
    assert _error_body(response)["code"] == "malformed_request"


def test_requests_within_the_bounds_are_served(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for _ in range(3):  # keep-alive: every request gets its own header deadline
            assert client.get("/healthz").status_code == 200
            time.sleep(HEADER_SECONDS / 2)
