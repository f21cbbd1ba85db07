"""The CLI's one error mapping (``cli/main.py``): every failure is an exit code scripts can trust.

Exit 1 means "misaligned" and nothing else: bad input, OS errors and our own bugs are exit 2 with a
message (a traceback only with ``--debug`` / ``LF_TEMPLATE_EXT_DEBUG=1``), unsupported is exit 3.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lf_template_ext.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "qwen2.5-tokenizer"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture
def dir_without_chat_template(tmp_path: Path) -> Path:
    model = tmp_path / "no-template"
    shutil.copytree(EXAMPLE, model)
    (model / "chat_template.jinja").unlink(missing_ok=True)
    cfg_path = model / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    return model


def test_native_without_chat_template_is_bad_input(dir_without_chat_template):
    """Was a traceback with exit 1 (the "misaligned" code) before the one mapping."""
    proc = run("check", str(dir_without_chat_template), "--template", "native")
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert err[0].startswith("lf-template check: error: ") and "has no chat template" in err[0]
    assert err[1].lstrip().startswith("fix: ")
    assert len(err) == 2 and "Traceback" not in proc.stderr


def _command_raising(monkeypatch, exc: BaseException) -> None:
    """Make `lf-template restore` raise ``exc`` from inside the command (our own code, not LF's)."""
    from lf_template_ext.cli import restore_cmd

    def boom(args):
        raise exc

    monkeypatch.setattr(restore_cmd, "run", boom)


def test_unexpected_error_is_exit_2_with_please_report(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    _command_raising(monkeypatch, KeyError("surprise"))
    assert cli.main(["restore", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err and "please report" in err and "--debug" in err
    assert "Traceback" not in err


def test_debug_adds_the_traceback(monkeypatch, tmp_path, capsys):
    _command_raising(monkeypatch, KeyError("surprise"))
    assert cli.main(["--debug", "restore", str(tmp_path)]) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert cli.main(["restore", str(tmp_path)]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize(
    "code, fix", [(errno.ENOSPC, "free some space"), (errno.EROFS, "read-only"), (errno.EACCES, "permissions")]
)
def test_os_errors_are_exit_2_naming_the_path_and_the_fix(monkeypatch, tmp_path, capsys, code, fix):
    target = str(tmp_path / "SERVING.md")
    _command_raising(monkeypatch, OSError(code, os.strerror(code), target))
    assert cli.main(["restore", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert target in err and fix in err and "Traceback" not in err


def test_every_error_of_ours_is_exit_2_and_unsupported_is_3(monkeypatch, tmp_path, capsys):
    from lf_template_ext.errors import ConversationError, LFTemplateExtError, UnsupportedTemplateError

    for exc in (LFTemplateExtError("x"), ConversationError("a conversation LF cannot encode")):
        _command_raising(monkeypatch, exc)
        assert cli.main(["restore", str(tmp_path)]) == 2
    _command_raising(monkeypatch, UnsupportedTemplateError("qwen", "no way", "tools"))
    assert cli.main(["restore", str(tmp_path)]) == 3
    assert "unsupported: LF template 'qwen' (tools): no way" in capsys.readouterr().err


def test_every_exception_class_derives_from_the_base():
    """No exception class of the package escapes the mapping by deriving from something else
    (every module is imported, the LF-importing ones too: LF is installed in the test environment)."""
    import importlib
    import inspect
    import pkgutil

    import lf_template_ext
    from lf_template_ext.errors import LFTemplateExtError

    stray = []
    for info in pkgutil.walk_packages(lf_template_ext.__path__, "lf_template_ext."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                if not issubclass(obj, LFTemplateExtError):
                    stray.append(f"{info.name}.{name}")
    assert not stray, stray


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_a_template_the_tokenizer_was_not_trained_with_is_exit_2_everywhere(tmp_path):
    """llama3 on a Qwen2.5 dir: its <|eot_id|> is not in the vocabulary, so the model was not trained with it.

    Before the one snapshot seam: `repair` 2, `check` 1 (suggesting the refused repair), `jinja`/`emit` 0 (and
    `emit --engine vllm` wrote the file). Now every command refuses it the same way, before writing anything.
    """
    from harness import FIXTURES

    model = tmp_path / "qwen-dir"
    shutil.copytree(FIXTURES / "Qwen--Qwen2.5-1.5B-Instruct", model)
    before = _tree(model)
    for args in (
        ("repair", str(model), "--template", "llama3"),
        ("check", str(model), "--template", "llama3"),
        ("jinja", "--template", "llama3", "--tokenizer", str(model)),
        ("emit", str(model), "--engine", "vllm", "--template", "llama3"),
    ):
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
        assert "<|eot_id|>" in proc.stderr and "not trained with this template" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert _tree(model) == before
