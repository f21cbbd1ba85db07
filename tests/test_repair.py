"""`lf-template repair` / `restore` / `check` on real model dirs: bad input, HF cache symlinks,
idempotence, restore, interrupted runs (kill -9) and failing disks."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import FIXTURES

from lf_template_ext.cli.main import main as cli_main
from lf_template_ext.modeldir import atomic, journal

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
LLAMA31 = FIXTURES / "meta-llama--Meta-Llama-3.1-8B-Instruct"


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


def snapshot(d: Path) -> dict[str, str]:
    """sha256 of every file (through links) + link targets, backups included."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = str(p.relative_to(d))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def llama_dir(tmp_path) -> Path:
    d = tmp_path / "Llama-3.1-merged"
    shutil.copytree(LLAMA31, d)
    (d / "generation_config.json").write_text(json.dumps({"bos_token_id": 128000, "eos_token_id": 128009}))
    return d


# -- the acceptance: check exits 1 before repair and 0 after ---------------------------------


def test_check_fails_before_and_passes_after_repair(llama_dir):
    before = cli("check", str(llama_dir), "--template", "llama3")
    assert before.returncode == 1, before.stdout + before.stderr
    assert "DIFFERS" in before.stdout and "MISALIGNED" in before.stdout
    assert "missing [128008]" in before.stdout  # <|eom_id|> is not a stop id of the native files

    repaired = cli("repair", str(llama_dir), "--template", "llama3")
    assert repaired.returncode == 0, repaired.stderr
    assert "backup:" in repaired.stdout

    after = cli("check", str(llama_dir), "--template", "llama3")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "ALIGNED" in after.stdout
    strict = cli("check", str(llama_dir), "--template", "llama3", "--json", "--strict")
    assert strict.returncode == 1  # llama3 has boundary-only adversarial cases (docs/coverage.md)
    data = json.loads(strict.stdout)
    assert data["summary"]["differs"] == 0 and data["summary"]["boundary_only"] > 0
    assert data["stop_ids"]["missing"] == []


def test_repair_writes_both_template_files_and_is_idempotent(llama_dir):
    assert cli_main(["repair", str(llama_dir), "--template", "llama3"]) == 0
    jinja = (llama_dir / "chat_template.jinja").read_text()
    cfg = json.loads((llama_dir / "tokenizer_config.json").read_text())
    assert cfg["chat_template"] == jinja
    assert json.loads((llama_dir / "generation_config.json").read_text())["eos_token_id"] == [128009, 128008]
    backups = sorted((llama_dir / ".lf-template-backups").iterdir())
    assert len(backups) == 1
    manifest = json.loads((backups[0] / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["files"]["tokenizer_config.json"]["sha256_before"] == hashlib.sha256(
        (LLAMA31 / "tokenizer_config.json").read_bytes()
    ).hexdigest()
    state = snapshot(llama_dir)
    second = cli("repair", str(llama_dir), "--template", "llama3")
    assert second.returncode == 0 and "nothing to change" in second.stdout
    assert snapshot(llama_dir) == state, "a second run must change nothing, not even create a backup"


def test_dry_run_prints_a_diff_and_writes_nothing(llama_dir):
    state = snapshot(llama_dir)
    proc = cli("repair", str(llama_dir), "--template", "llama3", "--dry-run", "--diff")
    assert proc.returncode == 0
    assert "--- a/generation_config.json" in proc.stdout and "+++ b/generation_config.json" in proc.stdout
    assert "+++ b/chat_template.jinja" in proc.stdout and "--- /dev/null" in proc.stdout
    assert snapshot(llama_dir) == state


def test_restore_puts_everything_back(llama_dir):
    original = snapshot(llama_dir)
    assert cli_main(["repair", str(llama_dir), "--template", "llama3", "--engines", "vllm"]) == 0
    proc = cli("restore", str(llama_dir))
    assert proc.returncode == 0, proc.stderr
    after = {k: v for k, v in snapshot(llama_dir).items() if not k.startswith(".lf-template-backups")}
    assert after == original
    again = cli("restore", str(llama_dir))
    assert again.returncode == 0 and "nothing to restore" in again.stdout


def test_hf_cache_symlinks_are_replaced_not_written_through(tmp_path):
    """An HF cache snapshot links to shared blobs; the blobs must stay byte-identical."""
    repo = tmp_path / "hub" / "models--meta-llama--Llama-3.1-8B-Instruct"
    blobs, snap = repo / "blobs", repo / "snapshots" / "0e9e39f249a16976918f6564b8830bc894c89659"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in LLAMA31.iterdir():
        data = f.read_bytes()
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.chmod(blob, 0o444)  # as huggingface_hub leaves them
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    blob_state = snapshot(blobs)
    assert cli_main(["repair", str(snap), "--template", "llama3"]) == 0
    assert snapshot(blobs) == blob_state, "a shared blob was written through a symlink"
    assert not (snap / "tokenizer_config.json").is_symlink()  # replaced by a regular file
    assert (snap / "tokenizer.json").is_symlink()  # untouched files keep their links
    assert cli_main(["restore", str(snap)]) == 0
    assert (snap / "tokenizer_config.json").is_symlink()
    assert snapshot(blobs) == blob_state


# -- bad input: exit 2, a message naming the file and the fix, nothing changed ---------------------


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (None, ["--template", "llama3"], "no such model dir"),
        ("empty", ["--template", "llama3"], "not a model dir"),
        ("bad_tokenizer_config", ["--template", "llama3"], "tokenizer_config.json: malformed JSON"),
        ("bad_generation_config", ["--template", "llama3"], "generation_config.json: malformed JSON"),
        ("ok", ["--template", "llama33"], "did you mean llama3"),
        ("ok", ["--template", "qwen"], "needs the token(s) ['<|im_end|>']"),
        ("ok", [], "no LF template given"),
        ("ok", ["--template", "llama3", "--engines", "vllm,trt"], "unknown engine"),
    ],
)
def test_bad_input(tmp_path, llama_dir, setup, args, message):
    if setup is None:
        target = tmp_path / "missing"
    elif setup == "empty":
        target = tmp_path / "empty"
        target.mkdir()
        (target / "notes.txt").write_text("hi")
    else:
        target = llama_dir
        if setup == "bad_tokenizer_config":
            (target / "tokenizer_config.json").write_text("{ not json")
        elif setup == "bad_generation_config":
            (target / "generation_config.json").write_text("[1, 2")
    before = snapshot(target) if target.exists() else None
    proc = cli("repair", str(target), *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert message in proc.stderr
    if before is not None:
        assert snapshot(target) == before


@pytest.mark.parametrize(
    "step, err, fail_at",
    [
        ("backup", errno.ENOSPC, 1),  # backing up the first original
        ("backup", errno.ENOSPC, 2),
        ("replace", errno.ENOSPC, 3),  # the manifest is written, no model file replaced yet
        ("replace", errno.ENOSPC, 5),  # some model files replaced, others not
        ("write", errno.ENOSPC, 8),  # the last file being written
        ("write", errno.EROFS, 1),  # read-only file system from the start
        ("replace", errno.EACCES, 6),
    ],
)
def test_failing_disk_leaves_the_dir_as_it_was(llama_dir, capsys, step, err, fail_at):
    """Disk full / read-only file system at the n-th write: exit 2, every file as before, no backup left."""
    before = snapshot(llama_dir)
    seen = {"n": 0}

    def hook(s: str, path: str) -> None:
        if s == step:
            seen["n"] += 1
            if seen["n"] == fail_at:
                raise OSError(err, os.strerror(err), path)

    atomic.set_fault_hook(hook)
    try:
        code = cli_main(["repair", str(llama_dir), "--template", "llama3"])
    finally:
        atomic.set_fault_hook(None)
    if seen["n"] < fail_at:
        pytest.fail(f"the repair did only {seen['n']} {step} steps; pick a smaller fail_at")
    assert code == 2
    assert "nothing was changed" in capsys.readouterr().err
    assert snapshot(llama_dir) == before


# -- kill -9 at any point: every file old or new, and the next run rolls back ----------------------


def _plan_file(model_dir: Path, tmp_path: Path) -> Path:
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.workflows.repair import plan_repair

    plan = plan_repair(str(model_dir), "llama3", TemplateOptions(), engines=("vllm",))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in plan.files.items()}))
    return path


@pytest.mark.slow
def test_kill_minus_9_at_every_write_step(llama_dir, tmp_path):
    plan_path = _plan_file(llama_dir, tmp_path)
    new = {k: hashlib.sha256(base64.b64decode(v)).hexdigest() for k, v in json.loads(plan_path.read_text()).items()}
    pristine = tmp_path / "pristine"
    shutil.copytree(llama_dir, pristine)
    old = snapshot(pristine)
    writer = [sys.executable, str(TESTS / "journal_writer.py")]
    total = subprocess.run(writer + [str(llama_dir), str(plan_path), "0"], capture_output=True, text=True, check=True)
    n_ops = int(total.stdout.split("OPS ")[1])
    points = sorted(random.Random(7).sample(range(1, n_ops + 1), min(50, n_ops)))
    for k in points:
        target = tmp_path / f"kill{k}"
        shutil.copytree(pristine, target)
        proc = subprocess.run(writer + [str(target), str(plan_path), str(k)], capture_output=True, text=True)
        assert proc.returncode == -signal.SIGKILL, (k, proc.stderr)
        now = snapshot(target)
        for rel in set(old) | set(new):
            if rel.startswith(".lf-template-backups"):
                continue
            assert now.get(rel) in (old.get(rel), new.get(rel)), f"kill at op {k}: {rel} is neither old nor new"
        journal.recover(str(target))
        recovered = {r: h for r, h in snapshot(target).items() if not r.startswith(".lf-template-backups")}
        assert recovered == old, f"kill at op {k}: recovery did not restore the original files"
        for _b, manifest in journal.list_backups(str(target)):
            assert manifest["status"] != "pending"
        shutil.rmtree(target)
    print(f"\nkill -9 at {len(points)} of {n_ops} write steps: every file old or new, every run recovered")


@pytest.mark.slow
def test_kill_minus_9_of_the_cli(llama_dir, tmp_path):
    """Kill the real CLI while it writes (as soon as its backup dir appears), then run it again."""
    pristine = tmp_path / "pristine"
    shutil.copytree(llama_dir, pristine)
    reference = tmp_path / "reference"
    shutil.copytree(llama_dir, reference)
    assert cli_main(["repair", str(reference), "--template", "llama3"]) == 0

    def files(d: Path) -> dict[str, str]:
        out = {r: h for r, h in snapshot(d).items() if not r.startswith(".lf-template-backups")}
        if (d / "SERVING.md").exists():  # holds the dir's absolute path and name (Open WebUI's served name): path-free
            text = (d / "SERVING.md").read_text().replace(str(d), "<DIR>")
            text = text.replace(f"--served-model-name {d.name}", "<NAME>").replace(f"`{d.name}`", "<NAME>")
            out["SERVING.md"] = hashlib.sha256(text.encode()).hexdigest()
        return out

    old, new = files(pristine), files(reference)
    for i, extra_sleep in enumerate((0.0, 0.002, 0.02)):
        target = tmp_path / f"cli{i}"
        shutil.copytree(pristine, target)
        proc = subprocess.Popen(
            [sys.executable, "-m", "lf_template_ext.cli.main", "repair", str(target), "--template", "llama3"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 300
        while proc.poll() is None and not (target / ".lf-template-backups").exists() and time.time() < deadline:
            time.sleep(0.001)
        time.sleep(extra_sleep)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = files(target)
        for rel in set(old) | set(new):
            assert now.get(rel) in (old.get(rel), new.get(rel)), f"{rel} is neither old nor new after kill {i}"
        again = cli("repair", str(target), "--template", "llama3")
        assert again.returncode == 0, again.stderr
        assert files(target) == new


def test_repair_checkpoint_script_is_the_same_command(llama_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(llama_dir, other)
    script = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "repair_checkpoint.py"), str(llama_dir), "--template", "llama3"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert script.returncode == 0, script.stderr
    assert cli_main(["repair", str(other), "--template", "llama3"]) == 0
    for name in ("chat_template.jinja", "tokenizer_config.json", "generation_config.json", "alignment_report.json"):
        assert (llama_dir / name).read_bytes() == (other / name).read_bytes(), name
    bad = subprocess.run([sys.executable, str(REPO / "scripts" / "repair_checkpoint.py"), str(tmp_path / "nope"), "--template", "llama3"],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2
