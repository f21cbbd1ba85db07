"""``lf-template repair FILE.gguf``: the GGUF half of the repair command."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import Any

from ..errors import BadInputError
from .common import load_tokenizer, resolve_template


def _gguf_tokenizer(path: str, args: argparse.Namespace) -> Any:
    if args.tokenizer:
        return load_tokenizer(args.tokenizer, trust_remote_code=args.trust_remote_code)
    from transformers import AutoTokenizer

    print(
        "building a tokenizer from the GGUF's own vocabulary (transformers converts it: tens of seconds for a 128k "
        "vocabulary); --tokenizer DIR with the HF tokenizer it was converted from is faster",
        file=sys.stderr,
    )
    try:
        return AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path))
    except Exception as e:  # architecture transformers cannot read from GGUF, missing vocab, ...
        raise BadInputError(
            f"cannot build a tokenizer from this GGUF ({type(e).__name__}: {e})",
            path=path,
            hint="pass --tokenizer DIR with the HF tokenizer the GGUF was converted from",
        ) from None


def repair_gguf_cli(args: argparse.Namespace) -> int:
    from ..compiler import compile_spec
    from ..modeldir.gguf import CHAT_TEMPLATE, apply_gguf, plan_gguf, read_meta

    path = args.target
    meta = read_meta(path)  # the one read of the metadata; truncated/foreign file: bad input before LF loads
    record_dir = args.tokenizer or os.path.dirname(os.path.abspath(path))
    resolved = resolve_template(args, model_dir=record_dir)
    if (args.mode or "fix") != "fix":
        raise BadInputError("--mode keep-native does not apply to a GGUF (only its template can change)", path=path)
    tokenizer = _gguf_tokenizer(path, args)
    from ..verifier import gate
    snap = gate.snapshot(resolved.template, tokenizer, resolved.options, trained_with=path)
    prepared = snap.prepared
    jinja = compile_spec(snap.spec, snap.facts)
    stop_ids = list(snap.stop_ids)
    plan = plan_gguf(path, jinja, prepared.tokenizer.eos_token_id, stop_ids, tokenizer=prepared.tokenizer, meta=meta)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    changed = plan.changed
    if args.dry_run:
        if not changed:
            print(f"nothing to change: {path} already serves LF template {resolved.template!r}")
        for key, (old, new) in changed.items():
            if key == CHAT_TEMPLATE:
                sys.stdout.writelines(
                    difflib.unified_diff(
                        (old or "").splitlines(keepends=True), new.splitlines(keepends=True), f"a/{key}", f"b/{key}"
                    )
                )
                print()
            else:
                print(f"{key}: {old!r} -> {new!r}")
        return 0
    backup = apply_gguf(plan)
    if backup is None:
        print(f"nothing to change: {path} already serves LF template {resolved.template!r}")
        return 0
    print(f"repaired {path} for LF template {resolved.template!r}:")
    for key, (old, new) in changed.items():
        shown = "<compiled template>" if key == CHAT_TEMPLATE else repr(new)
        print(f"  {key} = {shown}")
    print(f"backup: {backup.path}  (undo with: lf-template restore {os.path.dirname(os.path.abspath(path))})")
    return 0
