"""Issue 17 finding 10: a server that does not speak vLLM's or llama-server's API is bad input (exit 2,
"not a vLLM/llama-server endpoint"), not "N cases differ" (exit 1)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import FIXTURES

REPO = Path(__file__).resolve().parents[1]


class _NotImplemented(BaseHTTPRequestHandler):
    code = 501

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b"<html><body>Unsupported method</body></html>"
        self.send_response(self.code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


class _NotFound(_NotImplemented):
    code = 404


class _HtmlOk(_NotImplemented):
    code = 200


@pytest.fixture(params=[_NotImplemented, _NotFound, _HtmlOk], ids=["501", "404", "200-html"])
def foreign_server(request):
    server = ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_client_calls_a_foreign_server_bad_input(foreign_server):
    from lf_template_ext.errors import BadInputError
    from lf_template_ext.render.endpoint import make_endpoint
    from lf_template_ext.render.hf import RenderRequest

    ep = make_endpoint(foreign_server)
    req = RenderRequest(messages=[{"role": "user", "content": "Hi"}], tools=None, add_generation_prompt=True)
    with pytest.raises(BadInputError, match="not a vLLM/llama-server endpoint"):
        ep.ids_batch([req])


def test_check_against_a_501_server_exits_2(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotImplemented)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    d = tmp_path / "Qwen2.5-sft"
    shutil.copytree(FIXTURES / "Qwen--Qwen2.5-1.5B-Instruct", d)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "lf_template_ext.cli.main", "check", str(d), "--template", "qwen",
             "--endpoint", f"http://127.0.0.1:{server.server_address[1]}"],
            capture_output=True, text=True, cwd=REPO, timeout=600,
        )
    finally:
        server.shutdown()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-500:])
    assert "not a vLLM/llama-server endpoint" in proc.stderr and "HTTP 501" in proc.stderr
    assert "differ" not in proc.stdout
