"""The fake Kibana of the import-client tests: a tiny local HTTP server that checks the request shape.

Not a Kibana: none can run on our machines (see ../shared/notes/real-services.md §5). The fake checks what the
real import API requires of a request (``kbn-xsrf`` header, a multipart ``file`` part named ``*.ndjson``) and
answers as Kibana documents it; each test scripts the answer (``FakeKibana.answer``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    file_name: str | None
    lines: list[dict[str, Any]]


@dataclass
class FakeKibana:
    url: str
    answer: tuple[int, bytes] = (200, b"")
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)


def _kibana_like_check(handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, Any]] | None:
    """What real Kibana answers to a malformed import request (None: the request is well-formed)."""
    if handler.headers.get("kbn-xsrf") is None:
        return 400, {"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."}
    if not (handler.headers.get("Content-Type") or "").startswith("multipart/form-data; boundary="):
        return 415, {"statusCode": 415, "error": "Unsupported Media Type", "message": "Unsupported Media Type"}
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + handler.headers["Content-Type"].encode()
                                                  + b"\r\n\r\n" + body)  # fmt: skip
    parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
    if len(parts) != 1 or not str(parts[0].get_filename() or "").endswith(".ndjson"):
        return 400, {"statusCode": 400, "error": "Bad Request", "message": "Invalid file extension"}
    return None


@pytest.fixture
def kibana() -> Iterator[FakeKibana]:
    fake = FakeKibana(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(fake.delay_s)
            refused = _kibana_like_check(self, body)
            if refused is not None:
                self._reply(refused[0], json.dumps(refused[1]).encode())
                return
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
            )
            part = next(message.iter_parts())
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            lines = [json.loads(line) for line in payload.decode().splitlines()]
            url = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.received.append(Received(url.path, parse_qs(url.query), headers, part.get_filename(), lines))
            status, answer = fake.answer
            self._reply(status, answer or json.dumps({"success": True, "successCount": len(lines)}).encode())

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the timeout test hangs up before the answer: a broken pipe is expected there

    server = Server(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
