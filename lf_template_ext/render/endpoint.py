"""Engine sides that ask a live server for its prompt ids (``check --endpoint URL``).

The point is to check the engine's *real* chat path (its message parsing, template loading,
chat-template kwargs, BOS rule), not our model of it. Plain ``urllib`` (no new dependency);
requests of a batch go out concurrently on a few threads.

* **vLLM** (``vllm serve`` or the GPU-less ``vllm launch render``): ``POST /tokenize`` with
  ``messages``, ``tools``, ``add_generation_prompt``, ``chat_template_kwargs`` and
  ``add_special_tokens: false`` (vLLM's chat default: the template writes BOS itself). The
  answer's ``tokens`` are exactly what the server would feed the model for that chat request.
* **llama-server** (llama.cpp): ``POST /apply-template`` renders the request with the GGUF's
  template (``--jinja``), ``POST /tokenize`` with ``add_special: true, parse_special: true``
  tokenizes it as its chat path does (BOS added when the GGUF says ``add_bos_token``). A
  request whose last message is the assistant's is treated by llama-server as a prefill, so
  only generation prompts are compared there (``generation_only``).

A server's refusal (HTTP 4xx with a message, e.g. the template's ``raise_exception``) is that
request's result: the engine would refuse the chat request too. A server that cannot be reached,
or that does not speak the API (404/405/501 on the route, an answer that is not JSON or lacks
``tokens``/``prompt``), is bad input (exit 2), never "cases differ".
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, Sequence

from ..errors import BadInputError, ConversationError
from .hf import IdsOrError, RenderRequest

TIMEOUT = 120.0


class EngineRefused(ConversationError, RuntimeError):
    """The server answered the request with an error (its message is kept)."""


class NotAnEndpoint(BadInputError):
    """The server does not speak the API we asked for (404/405/501 on the route, or no JSON)."""


#: Answers that mean "this route does not exist here", not "this chat request is refused".
NOT_THE_API = (404, 405, 501)


def not_an_endpoint(url: str, what: str) -> NotAnEndpoint:
    return NotAnEndpoint(
        f"not a vLLM/llama-server endpoint: {what}",
        path=url,
        hint="pass the base URL of `vllm serve` / `vllm launch render` (POST /tokenize with messages) or of "
        "llama-server (POST /apply-template and /tokenize), e.g. --endpoint http://localhost:8000",
    )


def base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    for suffix in ("/v1", "/tokenize", "/apply-template"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def _post(url: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> Any:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read().decode("utf-8", "replace")
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise not_an_endpoint(url, f"it answered {raw[:120]!r}, not JSON") from None
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        if e.code in NOT_THE_API:
            raise not_an_endpoint(url, f"HTTP {e.code} {e.reason} ({body.strip()[:120]!r})") from None
        try:
            parsed = json.loads(body)
            err = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
            message = err.get("message", body) if isinstance(err, dict) else str(err)
        except json.JSONDecodeError:
            message = body
        raise EngineRefused(f"HTTP {e.code} from {url}: {message}") from None


def _get(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode("utf-8", "replace")
            try:
                return resp.status, json.loads(body)
            except json.JSONDecodeError:
                return resp.status, body
    except urllib.error.HTTPError as e:
        return e.code, None


def unreachable(url: str, err: Exception) -> BadInputError:
    return BadInputError(
        f"cannot reach the server at {url}: {getattr(err, 'reason', err)}",
        hint="start it first (e.g. `vllm serve MODEL_DIR` or `VLLM_TARGET_DEVICE=cpu vllm launch render MODEL_DIR`) "
        "and pass its base URL, e.g. --endpoint http://localhost:8000",
    )


def detect_kind(url: str) -> str:
    """``vllm`` or ``llama-server``, from what the server answers on ``/props`` (llama-server only)."""
    try:
        status, body = _get(url + "/props")
    except (urllib.error.URLError, OSError) as e:
        raise unreachable(url, e) from None
    if status == 200 and isinstance(body, dict) and ("default_generation_settings" in body or "chat_template" in body):
        return "llama-server"
    return "vllm"


def client_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as an OpenAI client sends them: tool-call ``arguments`` as a JSON string.

    The OpenAI schema (which vLLM validates) types ``arguments`` as a string; vLLM parses it back
    into an object before rendering, which is what the in-process engine renders directly.
    """
    out = []
    for m in messages:
        calls = m.get("tool_calls")
        if calls:
            m = dict(m)
            fixed = []
            for call in calls:
                fn = call.get("function", {})
                if not isinstance(fn.get("arguments", ""), str):
                    call = {**call, "function": {**fn, "arguments": json.dumps(fn["arguments"], ensure_ascii=False)}}
                fixed.append(call)
            m["tool_calls"] = fixed
        out.append(m)
    return out


class _Threaded:
    name = "endpoint"
    generation_only = False

    def __init__(self, url: str, threads: int = 8) -> None:
        self.url = base_url(url)
        self.threads = threads
        self._pool: Optional[ThreadPoolExecutor] = None  # made in the process that uses it (after fork)

    def one(self, request: RenderRequest) -> list[int]:
        raise NotImplementedError

    def _one_or_error(self, request: RenderRequest) -> IdsOrError:
        try:
            return self.one(request)
        except EngineRefused as e:
            return e
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise unreachable(self.url, e) from None

    def ids_batch(self, requests: Sequence[RenderRequest]) -> list[IdsOrError]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads)
        return list(self._pool.map(self._one_or_error, requests))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pool": None}


class VLLMEndpoint(_Threaded):
    """vLLM's ``POST /tokenize`` with chat messages: the server's own chat rendering + tokenization."""

    name = "vllm-endpoint"

    def __init__(self, url: str, model: Optional[str] = None, threads: int = 8) -> None:
        super().__init__(url, threads)
        self.model = model

    def payload(self, request: RenderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": client_messages(request.messages),
            "add_generation_prompt": request.add_generation_prompt,
            "add_special_tokens": False,
        }
        if request.tools:
            body["tools"] = request.tools
        if request.kwargs:
            body["chat_template_kwargs"] = request.kwargs
        if self.model:
            body["model"] = self.model
        return body

    def one(self, request: RenderRequest) -> list[int]:
        answer = _post(self.url + "/tokenize", self.payload(request))
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            raise not_an_endpoint(self.url + "/tokenize", f"it answered without 'tokens': {str(answer)[:200]}")
        return [int(t) for t in tokens]


class LlamaServerEndpoint(_Threaded):
    """llama-server: ``/apply-template`` then ``/tokenize`` as its chat completions path tokenizes."""

    name = "llama-server-endpoint"
    generation_only = True

    def one(self, request: RenderRequest) -> list[int]:
        body: dict[str, Any] = {
            "messages": client_messages(request.messages),
            "add_generation_prompt": request.add_generation_prompt,
        }
        if request.tools:
            body["tools"] = request.tools
        if request.kwargs:
            body["chat_template_kwargs"] = request.kwargs
        rendered = _post(self.url + "/apply-template", body)
        prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
        if not isinstance(prompt, str):
            raise not_an_endpoint(self.url + "/apply-template", f"it answered without 'prompt': {str(rendered)[:200]}")
        answer = _post(self.url + "/tokenize", {"content": prompt, "add_special": True, "parse_special": True})
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            raise not_an_endpoint(self.url + "/tokenize", f"it answered without 'tokens': {str(answer)[:200]}")
        return [int(t["id"]) if isinstance(t, dict) else int(t) for t in tokens]


def make_endpoint(url: str, kind: str = "auto", model: Optional[str] = None, threads: int = 8) -> _Threaded:
    """The client for the server at ``url`` (``kind``: ``auto``, ``vllm`` or ``llama-server``)."""
    base = base_url(url)
    if kind == "auto":
        kind = detect_kind(base)
    if kind == "vllm":
        return VLLMEndpoint(base, model=model, threads=threads)
    if kind == "llama-server":
        return LlamaServerEndpoint(base, threads=threads)
    raise BadInputError(f"unknown endpoint kind {kind!r}", hint="use auto, vllm or llama-server")
