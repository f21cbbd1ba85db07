"""`lf-template repair FILE.gguf`: a small GGUF written with the `gguf` package (llama.cpp's own
Python library), repaired, re-read; truncation, vocabulary mismatch and a full disk refused."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from harness import FIXTURES, fixture_tokenizer

REPO = Path(__file__).resolve().parents[1]
MISTRAL = "mistralai--Mistral-7B-Instruct-v0.3"  # a 32k vocabulary keeps the GGUF small and quick to parse


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True, cwd=REPO)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_small_gguf(path: Path) -> Path:
    """A llama-architecture GGUF with Mistral-v0.3's real vocabulary and its native chat template."""
    import gguf

    tok = fixture_tokenizer(MISTRAL)
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    added = set(tok.get_added_vocab())
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_name("tiny-llama-for-tests")
    w.add_block_count(1)
    w.add_tokenizer_model("llama")
    w.add_token_list(vocab)
    w.add_token_types([gguf.TokenType.CONTROL if t in added else gguf.TokenType.NORMAL for t in vocab])
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_eot_token_id(tok.eos_token_id)
    w.add_add_bos_token(True)
    w.add_chat_template(tok.chat_template)
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((4, 8)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def read_meta(path: Path) -> dict:
    from lf_template_ext.modeldir.gguf import read_metadata

    return read_metadata(str(path))


def tensor_bytes(path: Path) -> bytes:
    import gguf

    r = gguf.GGUFReader(str(path), "r")
    return b"".join(bytes(t.data.tobytes()) for t in r.tensors)


def test_repair_gguf_metadata_and_restore(tmp_path):
    import lf_template_ext as lte

    g = write_small_gguf(tmp_path / "tiny.gguf")
    original, weights = sha(g), tensor_bytes(g)
    proc = cli("repair", str(g), "--template", "mistral", "--tokenizer", str(FIXTURES / MISTRAL))
    assert proc.returncode == 0, proc.stderr
    meta = read_meta(g)
    expected = lte.compile_jinja("mistral", fixture_tokenizer(MISTRAL))
    assert meta["tokenizer.chat_template"] == expected
    assert meta["tokenizer.ggml.eos_token_id"] == 2  # </s>
    assert meta["tokenizer.ggml.eot_token_id"] == 2
    assert meta["tokenizer.ggml.add_bos_token"] is False  # the template writes <s> itself
    assert tensor_bytes(g) == weights
    backups = list((tmp_path / ".lf-template-backups").iterdir())
    assert len(backups) == 1 and sha(backups[0] / "files" / "tiny.gguf") == original
    assert not list(tmp_path.glob("*.lfte-tmp"))

    again = cli("repair", str(g), "--template", "mistral", "--tokenizer", str(FIXTURES / MISTRAL))
    assert again.returncode == 0 and "nothing to change" in again.stdout

    restored = cli("restore", str(tmp_path))
    assert restored.returncode == 0, restored.stderr
    assert sha(g) == original


def test_dry_run_shows_the_metadata_diff(tmp_path):
    g = write_small_gguf(tmp_path / "tiny.gguf")
    before = sha(g)
    proc = cli("repair", str(g), "--template", "mistral", "--tokenizer", str(FIXTURES / MISTRAL), "--dry-run")
    assert proc.returncode == 0
    assert "+++ b/tokenizer.chat_template" in proc.stdout and "tokenizer.ggml.add_bos_token: True -> False" in proc.stdout
    assert sha(g) == before


def test_truncated_gguf_is_refused_untouched(tmp_path):
    g = write_small_gguf(tmp_path / "tiny.gguf")
    data = g.read_bytes()
    g.write_bytes(data[: len(data) // 2])
    before = sha(g)
    proc = cli("repair", str(g), "--template", "mistral", "--tokenizer", str(FIXTURES / MISTRAL))
    assert proc.returncode == 2
    assert "not a readable GGUF" in proc.stderr and str(g) in proc.stderr
    assert sha(g) == before and not (tmp_path / ".lf-template-backups").exists()


def test_tokenizer_of_another_model_is_refused(tmp_path):
    g = write_small_gguf(tmp_path / "tiny.gguf")
    proc = cli("repair", str(g), "--template", "llama3", "--tokenizer", str(FIXTURES / "meta-llama--Meta-Llama-3.1-8B-Instruct"))
    assert proc.returncode == 2
    assert "does not match this GGUF" in proc.stderr


def test_full_disk_is_refused_before_writing(tmp_path):
    """A real tmpfs just big enough for the GGUF: the free-space check refuses, nothing changes."""
    src = write_small_gguf(tmp_path / "tiny.gguf")
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    size_kib = int(src.stat().st_size * 1.3) // 1024 + 64
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not let the tests mount a small tmpfs: {mounted.stderr.strip()}")
    try:
        g = mnt / "tiny.gguf"
        shutil.copy(src, g)
        before = sha(g)
        proc = cli("repair", str(g), "--template", "mistral", "--tokenizer", str(FIXTURES / MISTRAL))
        assert proc.returncode == 2, proc.stderr
        assert "not enough free space" in proc.stderr
        assert sha(g) == before
        assert sorted(os.listdir(mnt)) == ["tiny.gguf"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_stop_ids_are_written_as_the_docs_promise(tmp_path):
    """Issue 16, finding 9: a GGUF without eot / eos-list keys gets both (docs/cli.md: "eos/eot ids"): Llama-3.1's
    <|eot_id|> as eot and [128009, 128008] as the list; the metadata is read once by our own walk of the file
    (the vocabulary is not parsed twice), and the tensor data is copied byte for byte."""
    import gguf

    llama = FIXTURES / "meta-llama--Meta-Llama-3.1-8B-Instruct"
    tok = fixture_tokenizer("meta-llama--Meta-Llama-3.1-8B-Instruct")
    path = tmp_path / "llama.gguf"
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_block_count(1)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tok.convert_ids_to_tokens(list(range(len(tok)))))
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(128009)
    w.add_add_bos_token(True)
    w.add_chat_template(tok.chat_template)
    w.add_tensor("token_embd.weight", np.arange(32, dtype=np.float32).reshape(4, 8))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    before = tensor_bytes(path)
    proc = cli("repair", str(path), "--template", "llama3", "--tokenizer", str(llama))
    assert proc.returncode == 0, proc.stderr
    meta = read_meta(path)
    assert meta["tokenizer.ggml.eot_token_id"] == 128009
    assert meta["tokenizer.ggml.eos_token_ids"] == [128009, 128008]
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert tensor_bytes(path) == before
    reader = gguf.GGUFReader(str(path))  # llama.cpp's own library reads the rewritten file
    assert reader.get_field("tokenizer.ggml.eos_token_ids").contents() == [128009, 128008]
