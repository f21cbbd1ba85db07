"""`check --endpoint` clients against in-process servers that speak vLLM's and llama-server's HTTP API.

The proof against the real vLLM is ``test_endpoint_vllm.py`` (opt-in: vLLM needs its own venv). These
servers keep the client honest in the default suite: they render with the real tokenizer's chat
template as the engines do, and enforce what vLLM's request validation enforced when the real server
was run (tool calls need an ``id`` and string ``arguments``, tool results a ``tool_call_id``); the
llama-server one follows its documented ``/apply-template`` + ``/tokenize`` API (no llama.cpp here).
The result through a server must equal the in-process engine's, sample by sample.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from harness import FIXTURES

from lf_template_ext.cli.main import main as cli_main

QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"

ROWS = [
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}], "system": "Be kind."},
    {"conversations": [{"from": "human", "value": "keep {{idx}}"}, {"from": "gpt", "value": "ok"}]},
    {"conversations": [{"from": "human", "value": "Weather?"},
                       {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})},
                       {"from": "observation", "value": "{\"temp\": -3}"}, {"from": "gpt", "value": "Cold."}],
     "tools": json.dumps([{"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {}}}])},
    {"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "\n\nindented"}]},
]  # fmt: skip


def vllm_validate(messages: list[dict[str, Any]]) -> None:
    for m in messages:
        for call in m.get("tool_calls") or []:
            if "id" not in call:
                raise ValueError("ChatCompletionMessageFunctionToolCallParam.id: Field required")
            if not isinstance(call["function"].get("arguments"), str):
                raise ValueError("ChatCompletionMessageFunctionToolCallParam.function.arguments: Input should be a valid string")
        if m.get("role") == "tool" and "tool_call_id" not in m:
            raise ValueError("ChatCompletionToolMessageParam.tool_call_id: Field required")


def engine_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [
                {**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}} for c in m["tool_calls"]
            ]
        out.append(m)
    return out


class Server:
    def __init__(self, tokenizer: Any, kind: str) -> None:
        tok = tokenizer

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/props" and kind == "llama-server":
                    self.reply(200, {"default_generation_settings": {}, "chat_template": tok.chat_template})
                else:
                    self.reply(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                try:
                    if kind == "vllm" and self.path == "/tokenize":
                        vllm_validate(body["messages"])
                        text = tok.apply_chat_template(
                            engine_messages(body["messages"]), tools=body.get("tools"), tokenize=False,
                            add_generation_prompt=body.get("add_generation_prompt", True), **body.get("chat_template_kwargs", {}),
                        )  # fmt: skip
                        ids = tok.encode(text, add_special_tokens=body.get("add_special_tokens", False))
                        self.reply(200, {"count": len(ids), "tokens": ids, "token_strs": None})
                    elif kind == "llama-server" and self.path == "/apply-template":
                        text = tok.apply_chat_template(
                            engine_messages(body["messages"]), tools=body.get("tools"), tokenize=False,
                            add_generation_prompt=body.get("add_generation_prompt", True),
                        )  # fmt: skip
                        self.reply(200, {"prompt": text})
                    elif kind == "llama-server" and self.path == "/tokenize":
                        self.reply(200, {"tokens": tok.encode(body["content"], add_special_tokens=body.get("add_special", False))})
                    else:
                        self.reply(404, {"detail": "Not Found"})
                except Exception as e:  # as the servers do: a 400 with the message
                    self.reply(400, {"error": {"message": f"{type(e).__name__}: {e}", "code": 400}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("endpoint")
    model = root / "model"
    shutil.copytree(FIXTURES / QWEN25, model)
    data = root / "data.json"
    data.write_text(json.dumps(ROWS))
    return model, data


def run(capsys, *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = cli_main(["check", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_vllm_tokenize_client_equals_the_in_process_engine(setup, capsys):
    from transformers import AutoTokenizer

    model, data = setup
    base = [str(model), "--template", "qwen", "--dataset", str(data)]
    code, local = run(capsys, *base)
    with Server(AutoTokenizer.from_pretrained(model), "vllm") as server:
        code_remote, remote = run(capsys, *base, "--endpoint", server.url + "/v1", "--workers", "2")
    assert remote["engine"] == "vllm-endpoint" and remote["endpoint"] == server.url
    assert (code_remote, remote["summary"], remote["samples"]) == (code, local["summary"], local["samples"])
    assert remote["samples"]["data.json"]["differs"] == [1]  # LF's {{idx}} quirk, through the server too


def test_llama_server_client_compares_generation_prompts(setup, capsys):
    from transformers import AutoTokenizer

    model, data = setup
    with Server(AutoTokenizer.from_pretrained(model), "llama-server") as server:
        code, report = run(capsys, str(model), "--template", "qwen", "--dataset", str(data), "--endpoint", server.url)
    assert report["engine"] == "llama-server-endpoint"
    # generation prompts only: the whitespace answer's boundary and {{idx}} (in the prompt) remain visible
    assert report["samples"]["data.json"]["differs"] == [1] and report["samples"]["data.json"]["boundary_only"] == []
    assert all(c["part"] == "generation prompt" for c in report["cases"]) and code == 1


def test_server_refusals_are_differences_with_the_servers_message(setup, capsys, monkeypatch):
    from transformers import AutoTokenizer

    from lf_template_ext.render import endpoint

    model, data = setup
    monkeypatch.setattr(endpoint, "client_messages", lambda messages: list(messages))  # arguments stay objects
    with Server(AutoTokenizer.from_pretrained(model), "vllm") as server:
        code, report = run(capsys, str(model), "--template", "qwen", "--dataset", str(data), "--endpoint", server.url)
    (refused,) = [c for c in report["cases"] if c["index"] == 2]
    assert code == 1 and refused["status"] == "differs"
    assert "HTTP 400" in refused["reason"] and "arguments: Input should be a valid string" in refused["reason"]
