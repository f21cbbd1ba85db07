"""Where the tokenizer fixtures come from, in order (tests/fixtures/README.md):

1. ``LF_TEMPLATE_EXT_FIXTURES`` (a directory of fixture folders, e.g. a copy of ``../shared/fixtures/models``);
2. ``../shared/fixtures/models`` beside the clone (this workspace, and CI);
3. ``<cache>/fixtures/models`` (``${LF_TEMPLATE_EXT_CACHE:-~/.cache/lf-template-ext}``), filled once by
   ``python tests/fixtures_locate.py --fetch`` (scripts/test.sh runs it when online and 1-2 find nothing):
   the same files from the Hugging Face Hub (:data:`HUB_FILES`, each checked against the sha256 recorded in
   ``../shared/fixtures/MANIFEST.md``) plus the small files the repository ships (``tests/fixtures/models``).

With none of these (offline), :func:`locate` raises :class:`FixturesNotFound` with one message naming the three.
Stdlib only (the Hub download imports ``huggingface_hub`` on demand).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path
from typing import Mapping, Optional

REPO = Path(__file__).resolve().parents[1]
ENV = "LF_TEMPLATE_EXT_FIXTURES"
SHIPPED = REPO / "tests" / "fixtures" / "models"

#: folder -> [(file, hub repo, sha256[:16])]: the fixture files that are byte copies of a Hub repo's file
#: (MANIFEST.md; the Hub revision was not recorded there, so the download takes ``main`` and the hash decides).
HUB_FILES: dict[str, list[tuple[str, str, str]]] = {
    "01-ai--Yi-34B": [("tokenizer.json", "01-ai/Yi-34B", "18da9ff3421e5c87"), ("tokenizer_config.json", "01-ai/Yi-34B", "80261d812f5b1bff")],
    "NousResearch--Meta-Llama-3-8B": [
        ("tokenizer.json", "NousResearch/Meta-Llama-3-8B", "c05a3c2174e9edd5"),
        ("tokenizer_config.json", "NousResearch/Meta-Llama-3-8B", "c058e1ff967585f0"),
    ],
    "Qwen--Qwen1.5-72B-Chat": [
        ("tokenizer.json", "Qwen/Qwen1.5-72B-Chat", "f7c9b2dba4a296b1"),
        ("tokenizer_config.json", "Qwen/Qwen1.5-72B-Chat", "fec252db4bf6d31a"),
    ],
    "Qwen--Qwen2.5-1.5B-Instruct": [
        ("tokenizer.json", "Qwen/Qwen2.5-1.5B-Instruct", "c0382117ea329cdf"),
        ("tokenizer_config.json", "Qwen/Qwen2.5-1.5B-Instruct", "5b5d4f65d0acd3b2"),
    ],
    "Qwen--Qwen3-4B": [("tokenizer.json", "Qwen/Qwen3-4B", "aeb13307a71acd8f"), ("tokenizer_config.json", "Qwen/Qwen3-4B", "5a7303fcb1a27ede")],
    "THUDM--chatglm3-6b": [("tokenizer_config.json", "THUDM/chatglm3-6b", "0100d73f46e943ce")],
    "THUDM--glm-4-9b-chat": [
        ("LICENSE", "THUDM/glm-4-9b-chat", "fd0689724426a3ad"),
        ("config.json", "THUDM/glm-4-9b-chat", "6687374e00a0ed4a"),
        ("generation_config.json", "THUDM/glm-4-9b-chat", "1e3ca4066f68268a"),
        ("tokenization_chatglm.py", "THUDM/glm-4-9b-chat", "cd0650baf668ef8b"),
        ("tokenizer.model", "THUDM/glm-4-9b-chat", "5a49359807155024"),
        ("tokenizer_config.json", "THUDM/glm-4-9b-chat", "f891e4d4ebb4009b"),
    ],
    "baichuan-inc--Baichuan2-7B-Chat": [("tokenizer_config.json", "baichuan-inc/Baichuan2-7B-Chat", "49bb1dd184695eb2")],
    "deepseek-ai--DeepSeek-R1-Distill-Qwen-14B": [
        ("tokenizer_config.json", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "8c726f2ebf532f1d")
    ],
    "deepseek-ai--DeepSeek-R1-Distill-Qwen-32B": [
        ("LICENSE", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "1c8f573e830ca9b3"),
        ("config.json", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "2c003fe40b13d2d1"),
        ("generation_config.json", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "72cbec1015da9ed0"),
        ("tokenizer_config.json", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "8c726f2ebf532f1d"),
    ],
    "google--gemma-2-2b-it": [("tokenizer_config.json", "google/gemma-2-2b-it", "9a57f7ccdca0163c")],
    "google--gemma-3-1b-it": [
        ("tokenizer.json", "unsloth/gemma-3-1b-it", "4667f2089529e8e7"),
        ("tokenizer_config.json", "unsloth/gemma-3-1b-it", "fa4bdfa99d3936e9"),
    ],
    "internlm--internlm2-1_8b": [
        ("tokenizer.json", "internlm/internlm2-1_8b", "8e92463baee0aa9a"),
        ("tokenizer_config.json", "internlm/internlm2-1_8b", "3ad60a8ee8a0a63a"),
    ],
    "meta-llama--Llama-3.2-3B-Instruct": [
        ("tokenizer.json", "Xenova/Llama-3.2-Tokenizer", "6b9e4e7fb171f92f"),
        ("tokenizer_config.json", "Xenova/Llama-3.2-Tokenizer", "9823dcfdc1121869"),
    ],
    "meta-llama--Meta-Llama-3-8B-Instruct": [
        ("tokenizer.json", "meta-llama/Meta-Llama-3-8B-Instruct", "e134af98b985517b"),
        ("tokenizer_config.json", "meta-llama/Meta-Llama-3-8B-Instruct", "da0e3a7cce6e4d78"),
    ],
    "meta-llama--Meta-Llama-3.1-8B-Instruct": [
        ("tokenizer.json", "Xenova/Llama-3.2-Tokenizer", "6b9e4e7fb171f92f"),  # borrowed: Llama-3.2's, same vocabulary
        ("tokenizer_config.json", "meta-llama/Meta-Llama-3.1-8B-Instruct", "177c7b61e616fecb"),
    ],
    "microsoft--Phi-3-mini-4k-instruct": [
        ("tokenizer.model", "microsoft/Phi-3-mini-4k-instruct", "9e556afd44213b6b"),
        ("tokenizer_config.json", "microsoft/Phi-3-mini-4k-instruct", "e7571cb644e0bbba"),
    ],
    "mistralai--Mistral-7B-Instruct-v0.2": [("tokenizer.model", "mistralai/Mistral-7B-Instruct-v0.2", "dadfd56d766715c6")],
    "mistralai--Mistral-7B-Instruct-v0.3": [
        ("tokenizer.model", "mistralai/Mistral-7B-Instruct-v0.3", "37f00374dea48658"),
        ("tokenizer_config.json", "mistralai/Mistral-7B-Instruct-v0.3", "cf7d90917f89931e"),
    ],
    "mistralai--Mistral-Nemo-Instruct-2407": [
        ("tokenizer_config.json", "mistralai/Mistral-Nemo-Instruct-2407", "06225e2c4f93a808")
    ],
}


#: fixture files that are not a Hub file: (folder/file, URL of the public copy, sha256[:16]).
URL_FILES: list[tuple[str, str, str]] = [
    (
        "google--gemma-2-2b-it/chat_template.jinja",  # Gemma's template as llama.cpp keeps it (Gemma Terms of Use)
        "https://raw.githubusercontent.com/ggml-org/llama.cpp/master/models/templates/google-gemma-2-2b-it.jinja",
        "ecd6ae513fe103f0",
    ),
]


class FixturesNotFound(RuntimeError):
    pass


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    root = environ.get("LF_TEMPLATE_EXT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lf-template-ext")
    return Path(root) / "fixtures" / "models"


def message(environ: Mapping[str, str] = os.environ, repo: Path = REPO) -> str:
    return (
        "tokenizer fixtures not found. Give them one of three ways: (1) set LF_TEMPLATE_EXT_FIXTURES to a directory "
        f"of fixture folders; (2) clone the project beside ../shared (expected {repo.parent / 'shared' / 'fixtures' / 'models'}); "
        f"(3) online, run `python tests/fixtures_locate.py --fetch` once (bash scripts/test.sh does) to download them "
        f"from the Hugging Face Hub into {cache_dir(environ)}. See tests/fixtures/README.md"
    )


def locate(environ: Mapping[str, str] = os.environ, repo: Path = REPO) -> Path:
    """The fixture directory, by the order above, or :class:`FixturesNotFound` with the one message."""
    given = environ.get(ENV)
    if given:
        if not Path(given).is_dir():
            raise FixturesNotFound(f"{ENV}={given} is not a directory. " + message(environ, repo))
        return Path(given)
    shared = repo.parent / "shared" / "fixtures" / "models"
    if shared.is_dir():
        return shared
    cached = cache_dir(environ)
    if (cached / ".complete").is_file():
        return cached
    raise FixturesNotFound(message(environ, repo))


def _sha16(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def fetch(dest: Optional[Path] = None) -> Path:
    """Download :data:`HUB_FILES` (hash-checked) and copy the shipped files into ``dest`` (the cache)."""
    from huggingface_hub import hf_hub_download

    dest = dest or cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    bad = []
    for folder, files in HUB_FILES.items():
        for name, repo_id, sha in files:
            target = dest / folder / name
            if target.is_file() and _sha16(target) == sha:
                continue
            got = Path(hf_hub_download(repo_id, name, revision="main"))
            if _sha16(got) != sha:
                bad.append(f"{repo_id}/{name} (sha256 {_sha16(got)}, fixture {sha})")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(got, target)
    import urllib.request

    for rel, url, sha in URL_FILES:
        target = dest / rel
        if target.is_file() and _sha16(target) == sha:
            continue
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
        if hashlib.sha256(data).hexdigest()[:16] != sha:
            bad.append(f"{url} (sha256 {hashlib.sha256(data).hexdigest()[:16]}, fixture {sha})")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if SHIPPED.is_dir():
        for f in SHIPPED.rglob("*"):
            if f.is_file():
                (dest / f.relative_to(SHIPPED)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest / f.relative_to(SHIPPED))
    if bad:
        raise FixturesNotFound("the Hub's files differ from the fixtures' (a newer revision): " + "; ".join(bad))
    (dest / ".complete").write_text("fetched by tests/fixtures_locate.py\n")
    return dest


def main(argv: list[str]) -> int:
    try:
        print(locate())
        return 0
    except FixturesNotFound as e:
        if "--fetch" not in argv or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", ""):
            print(e, file=sys.stderr)
            return 2
    import socket

    try:  # offline: the one message at once, not the Hub client's retries
        socket.create_connection(("huggingface.co", 443), timeout=5).close()
    except OSError as e:
        print(f"{message()}\n(offline: huggingface.co is unreachable: {e})", file=sys.stderr)
        return 2
    try:
        print(fetch())
        return 0
    except Exception as e:  # noqa: BLE001 - offline, gated repo, changed file: the one message and why
        print(f"{message()}\n(fetching failed: {type(e).__name__}: {e})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
