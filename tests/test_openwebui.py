"""Opt-in: a real Open WebUI forwards what training saw, with the preset `repair --engines openwebui` writes.

Runs only when ``LF_TEMPLATE_EXT_OPENWEBUI`` names an ``open-webui`` executable from its own venv (it pins
its own dependencies; docs/development.md says how to build it). A Qwen2.5 fixture dir is repaired with
``lf-template repair --template qwen --engines vllm,openwebui --generation lf``; a stdlib OpenAI-compatible
server on 127.0.0.1 records every request; Open WebUI (auth off, its own DATA_DIR, no Ollama) is pointed at
it; the preset is imported through ``POST /api/v1/models/import`` and a chat goes through Open WebUI's own
``POST /api/chat/completions``. The messages Open WebUI forwarded, rendered with the repaired dir's chat
template, must be LF's training ids of the conversation the user typed, token for token; a user-level
system prompt (the web UI sends it as a system message) makes them differ. The captured request is written
to ``$LF_TEMPLATE_EXT_OPENWEBUI_CAPTURE`` when set (docs/open-webui.md). A web UI chat (it carries a
``session_id``) gets Open WebUI's built-in tools added unless the model's ``builtin_tools`` capability is off,
as the preset sets it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import FIXTURES

pytestmark = [pytest.mark.optin]
OPENWEBUI = os.environ.get("LF_TEMPLATE_EXT_OPENWEBUI")
skip = pytest.mark.skipif(not OPENWEBUI, reason="set LF_TEMPLATE_EXT_OPENWEBUI=/path/to/open-webui to run Open WebUI")

REPO = Path(__file__).resolve().parents[1]
MODEL = "qwen2.5-lf-sft"
ANSWER = "Paris is the capital of France."
STARTUP_SECONDS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible server: one model, a canned answer, every request kept."""

    requests: list[dict] = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.requests.append({"method": "GET", "path": self.path})
        if self.path.rstrip("/").endswith("/models"):
            self._send({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "vllm"}]})
        else:
            self.send_error(404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.requests.append({"method": "POST", "path": self.path, "body": body})
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        if body.get("stream"):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}]}  # fmt: skip
            data = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._send({
            "id": "c", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })  # fmt: skip


def call(url: str, body=None, token: str = "", method: str = "POST") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture(scope="module")
def repaired(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("owui") / MODEL
    shutil.copytree(FIXTURES / "Qwen--Qwen2.5-1.5B-Instruct", d)
    proc = subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", "repair", str(d), "--template", "qwen",
         "--engines", "vllm,openwebui", "--generation", "lf"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return d


@pytest.fixture(scope="module")
def webui(tmp_path_factory):
    """The recorder and a running Open WebUI pointed at it: ``(base url, token, recorder class)``."""
    Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = tmp_path_factory.mktemp("owui-data")
    port = free_port()
    env = {
        **os.environ, "DATA_DIR": str(data), "WEBUI_AUTH": "False", "ENABLE_OLLAMA_API": "False",
        "OPENAI_API_BASE_URL": f"http://127.0.0.1:{server.server_port}/v1", "OPENAI_API_KEY": "none",
        "ENABLE_OPENAI_API": "True", "HF_HUB_OFFLINE": "1", "BYPASS_EMBEDDING_AND_RETRIEVAL": "True",
        "ENABLE_TITLE_GENERATION": "False", "ENABLE_TAGS_GENERATION": "False",
        "ENABLE_FOLLOW_UP_GENERATION": "False", "ENABLE_VERSION_UPDATE_CHECK": "False",
        "WEBUI_SECRET_KEY": "lf-template-ext-test", "SCARF_NO_ANALYTICS": "true", "DO_NOT_TRACK": "true",
        "ANONYMIZED_TELEMETRY": "false",
    }  # fmt: skip
    env.pop("PYTHONPATH", None)  # Open WebUI runs in its own venv
    log = open(data / "open-webui.log", "w")
    proc = subprocess.Popen(
        [OPENWEBUI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=str(data),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"open-webui exited with {proc.returncode}; see {log.name}")
            try:
                call(base + "/health", method="GET")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"open-webui did not start in {STARTUP_SECONDS}s; see {log.name}") from None
                time.sleep(2)
        token = call(base + "/api/v1/auths/signin", {"email": "", "password": ""})["token"]
        yield base, token, Recorder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        server.shutdown()
        log.close()


def forwarded_chat(recorder) -> dict:
    posts = [r for r in recorder.requests if r["method"] == "POST" and r["path"].endswith("/chat/completions")]
    assert posts, recorder.requests
    return posts[-1]["body"]


def ids_of(model_dir: Path, messages: list[dict]) -> tuple[list[int], list[int]]:
    """``(engine, training)``: the messages rendered with the dir's chat template (as vLLM renders them) and
    LF's training generation-prompt ids of the conversation the user typed (no system message)."""
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.modeldir.files import read_chat_template
    from lf_template_ext.modeldir.tokenizer import load_tokenizer
    from lf_template_ext.render.hf import Renderer
    from lf_template_ext.verifier.reference import TrainingReference

    tokenizer = load_tokenizer(str(model_dir))
    jinja, _ = read_chat_template(str(model_dir))
    engine = Renderer(tokenizer, jinja).ids(messages, None, True)
    typed = [m for m in messages if m["role"] != "system"] + [{"role": "assistant", "content": ANSWER}]
    prepared = lf_compat.snapshot("qwen", tokenizer, TemplateOptions()).prepared
    _ids, prompt = TrainingReference(prepared).for_conversation({"messages": typed})
    return engine, prompt


@skip
def test_preset_import_and_chat_forward_what_training_saw(repaired, webui):
    base, token, recorder = webui
    preset = json.loads((repaired / "open-webui-model.json").read_text())
    assert call(base + "/api/v1/models/import", {"models": preset}, token) is True
    question = [{"role": "user", "content": "What is the capital of France?"}]
    answer = call(base + "/api/chat/completions", {"model": preset[0]["id"], "messages": question, "stream": False}, token)
    assert answer["choices"][0]["message"]["content"] == ANSWER
    sent = forwarded_chat(recorder)
    capture = os.environ.get("LF_TEMPLATE_EXT_OPENWEBUI_CAPTURE")
    if capture:
        Path(capture).write_text(json.dumps(sent, indent=2, ensure_ascii=False) + "\n")
    assert sent["model"] == MODEL  # the preset's base model
    assert sent["messages"] == question  # no system message added: the template writes training's default
    assert sent["stop"] == ["<|im_end|>"]
    assert {k: sent[k] for k in ("temperature", "top_p", "top_k", "repetition_penalty", "max_tokens")} == {
        "temperature": 0.95, "top_p": 0.7, "top_k": 50, "repetition_penalty": 1.0, "max_tokens": 1024,
    }  # fmt: skip
    assert "tools" not in sent
    engine, training = ids_of(repaired, sent["messages"])
    assert engine == training


@skip
def test_user_system_prompt_is_not_what_training_saw(repaired, webui):
    """The web UI sends Settings > General > System Prompt as the first message (role system): Open WebUI
    forwards it, and the template renders it instead of training's default system."""
    base, token, recorder = webui
    preset = json.loads((repaired / "open-webui-model.json").read_text())
    call(base + "/api/v1/models/import", {"models": preset}, token)
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    call(base + "/api/chat/completions", {"model": preset[0]["id"], "messages": messages, "stream": False}, token)
    sent = forwarded_chat(recorder)
    assert sent["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    engine, training = ids_of(repaired, sent["messages"])
    assert engine != training
    from lf_template_ext.modeldir.tokenizer import load_tokenizer

    tok = load_tokenizer(str(repaired))
    assert "You are Qwen, created by Alibaba Cloud." in tok.decode(training)
    assert "You are Qwen" not in tok.decode(engine)


@skip
def test_builtin_tools_off_in_the_preset(repaired, webui):
    """A chat from Open WebUI's web UI carries a ``session_id``: Open WebUI then adds its built-in tools to the
    request (the template would render a tool prompt training never saw) unless the model's
    ``capabilities.builtin_tools`` is false, as in the preset."""
    base, token, recorder = webui
    preset = json.loads((repaired / "open-webui-model.json").read_text())
    call(base + "/api/v1/models/import", {"models": preset}, token)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    for model, has_tools in ((MODEL, True), (preset[0]["id"], False)):
        body = {"model": model, "messages": question, "stream": False, "session_id": "s1"}
        call(base + "/api/chat/completions", body, token)
        sent = forwarded_chat(recorder)
        assert bool(sent.get("tools")) is has_tools, (model, sorted(sent))
        capture = os.environ.get("LF_TEMPLATE_EXT_OPENWEBUI_CAPTURE")
        if capture and has_tools:
            names = [t.get("function", {}).get("name") for t in sent["tools"]]
            Path(capture).with_name("builtin-tools.json").write_text(json.dumps(names, indent=2) + "\n")
