"""Tests in any clone (tests/fixtures/README.md): where the tokenizer fixtures come from.

A copy of the project in a temporary dir has no ``../shared`` beside it: without
``LF_TEMPLATE_EXT_FIXTURES`` and with an empty cache, pytest stops at once with the one message naming
the three ways; with the variable pointing at a copy (symlinks) of the fixtures, a test that loads a
fixture tokenizer is green. The table of Hub files plus the shipped files must cover the fixtures
exactly, with the hashes of the files in ``../shared`` (the Hub itself is unreachable here).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_locate import HUB_FILES, SHIPPED, URL_FILES, FixturesNotFound, locate

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "fixtures" / "models"


def test_fixture_tokenizer_loads():
    from harness import FIXTURES, fixture_tokenizer

    tok = fixture_tokenizer("Qwen--Qwen2.5-1.5B-Instruct")
    assert tok.convert_tokens_to_ids("<|im_end|>") == 151645
    print(f"\nFIXTURES={FIXTURES}")


def _clone(tmp: Path) -> Path:
    clone = tmp / "work" / "lf-template-ext"  # no ../shared beside it
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc")
    for part in ("lf_template_ext", "tests"):
        shutil.copytree(REPO / part, clone / part, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", clone / "pyproject.toml")
    return clone


def _pytest(clone: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LF_TEMPLATE_EXT_FIXTURES", "PYTHONPATH")}
    env.update(env_extra, PYTHONPATH=str(clone))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-s",
         "tests/test_fixtures_locate.py::test_fixture_tokenizer_loads"],
        cwd=clone, capture_output=True, text=True, env=env, timeout=600,
    )


def test_clone_without_shared_stops_with_one_message_and_runs_with_the_variable(tmp_path):
    clone = _clone(tmp_path)
    cache = tmp_path / "cache"
    proc = _pytest(clone, {"LF_TEMPLATE_EXT_CACHE": str(cache)})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert out.count("tokenizer fixtures not found") == 1, out[-3000:]
    for way in ("LF_TEMPLATE_EXT_FIXTURES", str(clone.parent / "shared" / "fixtures" / "models"), "--fetch", str(cache)):
        assert way in out, (way, out[-3000:])
    assert "passed" not in out
    # scripts/test.sh's step: offline (HF_HUB_OFFLINE=1), the same one message and exit 2, nothing fetched
    env = {k: v for k, v in os.environ.items() if k != "LF_TEMPLATE_EXT_FIXTURES"}
    env.update(HF_HUB_OFFLINE="1", LF_TEMPLATE_EXT_CACHE=str(cache))
    step = subprocess.run(
        [sys.executable, str(clone / "tests" / "fixtures_locate.py"), "--fetch"], capture_output=True, text=True, env=env, timeout=60
    )
    assert step.returncode == 2 and step.stdout == "", step.stderr
    assert step.stderr.count("tokenizer fixtures not found") == 1 and "LF_TEMPLATE_EXT_FIXTURES" in step.stderr
    assert not cache.exists()
    fixtures = tmp_path / "my-fixtures"
    fixtures.mkdir()
    for folder in SHARED.iterdir():
        (fixtures / folder.name).symlink_to(folder)
    proc = _pytest(clone, {"LF_TEMPLATE_EXT_CACHE": str(cache), "LF_TEMPLATE_EXT_FIXTURES": str(fixtures)})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert f"FIXTURES={fixtures}" in proc.stdout and "1 passed" in proc.stdout


def test_locate_order(tmp_path):
    clone = tmp_path / "a" / "clone"
    clone.mkdir(parents=True)
    env = {"LF_TEMPLATE_EXT_CACHE": str(tmp_path / "cache")}
    with pytest.raises(FixturesNotFound, match="one of three ways"):
        locate(env, clone)
    with pytest.raises(FixturesNotFound, match="is not a directory"):
        locate({**env, "LF_TEMPLATE_EXT_FIXTURES": str(tmp_path / "missing")}, clone)
    fetched = tmp_path / "cache" / "fixtures" / "models"
    fetched.mkdir(parents=True)
    with pytest.raises(FixturesNotFound):  # a partial fetch does not count
        locate(env, clone)
    (fetched / ".complete").write_text("")
    assert locate(env, clone) == fetched
    shared = tmp_path / "a" / "shared" / "fixtures" / "models"
    shared.mkdir(parents=True)
    assert locate(env, clone) == shared  # ../shared before the cache
    assert locate({**env, "LF_TEMPLATE_EXT_FIXTURES": str(tmp_path)}, clone) == tmp_path  # the variable first


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/fixtures to compare against")
def test_hub_table_and_shipped_files_are_exactly_the_fixtures():
    wanted = {str(p.relative_to(SHARED)): p for p in SHARED.rglob("*") if p.is_file()}
    listed = {f"{folder}/{name}": sha for folder, files in HUB_FILES.items() for name, _repo, sha in files}
    listed.update({rel: sha for rel, _url, sha in URL_FILES})
    shipped = {str(p.relative_to(SHIPPED)): p for p in SHIPPED.rglob("*") if p.is_file()}
    assert not set(listed) & set(shipped), "a file is both fetched and shipped"
    assert set(listed) | set(shipped) == set(wanted), sorted(set(wanted) ^ (set(listed) | set(shipped)))
    for rel, sha in listed.items():
        assert hashlib.sha256(wanted[rel].read_bytes()).hexdigest()[:16] == sha, rel
    for rel, p in shipped.items():
        assert p.read_bytes() == wanted[rel].read_bytes(), rel
