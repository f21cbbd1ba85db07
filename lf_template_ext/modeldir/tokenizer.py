"""Loading the tokenizer of a model dir, with errors that name the dir and the fix.

transformers is imported only when a tokenizer is really loaded, so callers that find bad
input first (a missing dir, malformed JSON) answer without it.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import BadInputError


def require_dir(path: str, what: str = "model dir") -> str:
    if not os.path.exists(path):
        raise BadInputError(f"no such {what}", path=path)
    if not os.path.isdir(path):
        raise BadInputError(f"not a directory (expected a {what})", path=path)
    return path


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    """Load the tokenizer of ``path`` with a clear error when it is not one."""
    require_dir(path, "tokenizer dir")
    names = set(os.listdir(path))
    if not names & {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json", "tiktoken.model"}:
        raise BadInputError(
            "no tokenizer files here (tokenizer.json / tokenizer.model / tokenizer_config.json)",
            path=path,
            hint="point at the model dir that holds the tokenizer training used",
        )
    from .files import load_json_file

    if "tokenizer_config.json" in names:
        load_json_file(os.path.join(path, "tokenizer_config.json"))  # malformed JSON -> BadInputError naming it
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as e:  # transformers raises many types here
        hint = "pass --trust-remote-code if the model ships its own tokenizer code" if "trust_remote_code" in str(e) else None
        raise BadInputError(f"cannot load the tokenizer: {type(e).__name__}: {e}", path=path, hint=hint) from None
