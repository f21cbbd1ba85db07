"""Issue 17, "nothing lost, ever": fault injection on every writing path of a real model dir (a copy of
the Qwen2.5 tokenizer fixture, repaired once with the real `lf-template repair --template qwen`).

Covers: restore after a later edit (kept, or set aside with --force), --output into a model dir, GGUF
killed between its two renames, GGUF mode/owner/times, all-or-nothing restore, restore after an
interrupted run, stacked runs, the writer lock (wait / --no-wait / a live run never rolled back), N=4
concurrent repairs and restores of one dir for 20 rounds, a read-only and a full file system for every
command that writes (report files included), an immutable file.

The concurrency rounds use `nothing_lost_writer.py repair` (the journal steps of `lf-template repair`
after its planning, with the repair's real bytes) beside the real `lf-template restore`, so 80 writers
run in seconds; the real CLI repair takes the same lock around the same calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from harness import FIXTURES

from lf_template_ext.errors import BadInputError
from lf_template_ext.modeldir import atomic, journal, output

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
QWEN25 = FIXTURES / "Qwen--Qwen2.5-1.5B-Instruct"
MISTRAL = FIXTURES / "mistralai--Mistral-7B-Instruct-v0.3"
WRITER = [sys.executable, str(TESTS / "nothing_lost_writer.py")]
BACKUPS = journal.BACKUP_DIR


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", *map(str, args)],
        capture_output=True, text=True, cwd=REPO, timeout=timeout,
    )


def files(d: Path) -> dict[str, str]:
    """sha256 of the model files (backups and set-aside copies excluded), link targets as such."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = str(p.relative_to(d))
        if rel.startswith(BACKUPS) or ".edited-" in rel:
            continue
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def everything(d: Path) -> dict[str, str]:
    """Every file under ``d``, backups and manifests included."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file()}


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    for p in [dst, *dst.rglob("*")]:
        if not p.is_symlink():
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    return dst


class Dirs:
    """The pristine and the repaired Qwen2.5 dir (same path name), their file states and the plan."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.orig = copy(QWEN25, root / "orig" / "Qwen2.5-sft")
        self.O = files(self.orig)
        self.rep = copy(self.orig, root / "rep" / "Qwen2.5-sft")
        proc = cli("repair", self.rep, "--template", "qwen")
        assert proc.returncode == 0, proc.stderr
        self.R = files(self.rep)
        self.plan = {rel: (self.rep / rel).read_bytes() for rel, h in self.R.items() if self.O.get(rel) != h}
        self.plan_path = root / "plan.json"
        self.plan_path.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in self.plan.items()}))

    def fresh(self, tmp: Path, which: str = "orig", name: str = "Qwen2.5-sft") -> Path:
        return copy(self.orig if which == "orig" else self.rep, tmp / name)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> Dirs:
    return Dirs(tmp_path_factory.mktemp("nothing-lost"))


def writer_ops(d: Path, plan: Path) -> int:
    probe = d.parent / (d.name + "-probe")
    shutil.copytree(d, probe)
    out = subprocess.run(WRITER + ["kill-at", str(probe), str(plan), "0"], capture_output=True, text=True, check=True)
    shutil.rmtree(probe)
    return int(out.stdout.split("OPS ")[1])


# -- 2: restore keeps what was changed after the repair --------------------------------------------------


def test_restore_keeps_files_edited_after_the_repair(dirs, tmp_path):
    d = dirs.fresh(tmp_path, "rep")
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = 4096  # the user's own later edit
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    (d / "SERVING.md").write_text((d / "SERVING.md").read_text() + "\nour cluster: use port 9000\n")
    edited = {k: files(d)[k] for k in ("tokenizer_config.json", "SERVING.md")}
    proc = cli("restore", d)
    assert proc.returncode == 0, proc.stderr
    now = files(d)
    assert {k: now.get(k) for k in edited} == edited, "restore destroyed an edit made after the repair"
    for rel in ("chat_template.jinja", "generation_config.json", "alignment_report.json"):
        assert rel not in now  # the repair created them: removed
    assert "kept 2 file(s) changed since that run" in proc.stderr
    assert "tokenizer_config.json" in proc.stderr and "SERVING.md" in proc.stderr
    original = Path(proc.stderr.split("tokenizer_config.json  (original: ")[1].split(")")[0])
    assert hashlib.sha256(original.read_bytes()).hexdigest() == dirs.O["tokenizer_config.json"]


def test_restore_force_restores_and_sets_the_edit_aside(dirs, tmp_path):
    d = dirs.fresh(tmp_path, "rep")
    (d / "SERVING.md").write_text("my notes\n")
    proc = cli("restore", d, "--force")
    assert proc.returncode == 0, proc.stderr
    assert files(d) == dirs.O
    aside = list(d.glob("SERVING.md.edited-*"))
    assert len(aside) == 1 and aside[0].read_text() == "my notes\n"
    assert "saved as" in proc.stdout


# -- 1: --output into a model dir goes through the journal; outside it, other files are not overwritten ---


def test_output_into_the_model_dir_is_journaled(dirs, tmp_path):
    d = dirs.fresh(tmp_path)
    lf_modelfile = "FROM .\nTEMPLATE \"\"\"{{ .Prompt }}\"\"\"\n"  # LF's own export Modelfile
    (d / "Modelfile").write_text(lf_modelfile)
    proc = cli("emit", d, "--engine", "ollama", "--template", "qwen", "--output", d / "Modelfile")
    assert proc.returncode == 0, proc.stderr
    assert "backup:" in proc.stdout and 'PARAMETER stop "<|im_end|>"' in (d / "Modelfile").read_text()
    back = cli("restore", d)
    assert back.returncode == 0, back.stderr
    assert (d / "Modelfile").read_text() == lf_modelfile


@pytest.mark.parametrize("cmd", ["emit", "jinja"])
def test_output_over_the_models_own_json_is_refused(dirs, tmp_path, cmd):
    d = dirs.fresh(tmp_path)
    before = everything(d)
    target = d / "tokenizer_config.json"
    if cmd == "emit":
        proc = cli("emit", d, "--engine", "vllm", "--template", "qwen", "--output", target)
    else:
        proc = cli("jinja", "--template", "qwen", "--tokenizer", d, "--output", target)
    assert proc.returncode == 2, proc.stderr
    assert f"{target}: refusing to write over the model's own tokenizer_config.json" in proc.stderr
    assert everything(d) == before


def test_output_outside_a_model_dir_needs_force_for_a_foreign_file(dirs, tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("not ours\n")
    proc = cli("jinja", "--template", "qwen", "--tokenizer", dirs.orig, "--output", out)
    assert proc.returncode == 2 and "--force" in proc.stderr and str(out) in proc.stderr
    assert out.read_text() == "not ours\n"
    forced = cli("jinja", "--template", "qwen", "--tokenizer", dirs.orig, "--output", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_text().startswith("{#- Generated by lf-template-ext")
    assert output.is_ours(str(out), b"other bytes")  # our header: later runs overwrite it without --force
    assert not list(tmp_path.glob(".*lfte-tmp"))


# -- 4, 5: GGUF -----------------------------------------------------------------------------------------


def _gguf(tmp: Path) -> Path:
    from test_gguf import write_small_gguf

    tmp.mkdir(parents=True, exist_ok=True)
    g = write_small_gguf(tmp / "tiny.gguf")
    os.chmod(g, 0o644)
    return g


def _kill_between_renames(g: Path) -> str:
    original = hashlib.sha256(g.read_bytes()).hexdigest()
    proc = subprocess.run(WRITER + ["gguf-kill", str(g)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert not g.exists(), "the kill did not land between the two renames"
    assert list(g.parent.glob(".tiny.gguf.*.lfte-tmp")) and list(g.parent.glob(f"{BACKUPS}/*/files/tiny.gguf"))
    return original


def test_gguf_killed_between_renames_restore_brings_it_back(tmp_path):
    g = _gguf(tmp_path / "m")
    original = _kill_between_renames(g)
    note = journal.interrupted_run(str(g.parent))
    assert note and "interrupted" in note and "lf-template restore" in note
    proc = cli("restore", g.parent)
    assert proc.returncode == 0, proc.stderr
    assert "rolled back an interrupted run" in proc.stdout and "tiny.gguf" in proc.stdout
    assert hashlib.sha256(g.read_bytes()).hexdigest() == original
    assert not list(g.parent.glob("*.lfte-tmp")) and journal.interrupted_run(str(g.parent)) is None


def test_gguf_killed_between_renames_repair_rolls_back_and_repairs(tmp_path):
    g = _gguf(tmp_path / "m")
    _kill_between_renames(g)
    proc = cli("repair", g, "--template", "mistral", "--tokenizer", MISTRAL)
    assert proc.returncode == 0, proc.stderr
    assert "rolled back an interrupted earlier run" in proc.stderr and "repaired" in proc.stdout
    from lf_template_ext.modeldir.gguf import read_metadata

    assert read_metadata(str(g))["tokenizer.ggml.add_bos_token"] is False
    assert stat.S_IMODE(g.stat().st_mode) == 0o644


def test_gguf_repair_keeps_mode_owner_and_times(tmp_path):
    from lf_template_ext.modeldir.gguf import apply_gguf, plan_gguf, read_metadata

    g = _gguf(tmp_path / "m")
    os.chmod(g, 0o640)
    if os.geteuid() == 0:
        os.chown(g, 4321, 4321)
    os.utime(g, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = g.stat()
    eos = read_metadata(str(g))["tokenizer.ggml.eos_token_id"]
    assert apply_gguf(plan_gguf(str(g), "{{ messages[0]['content'] }}", eos, [eos])) is not None
    after = g.stat()
    assert read_metadata(str(g))["tokenizer.chat_template"] == "{{ messages[0]['content'] }}"
    assert stat.S_IMODE(after.st_mode) == 0o640, oct(after.st_mode)
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert after.st_mtime_ns == before.st_mtime_ns


# -- 6, 7, 11: restore is all-or-nothing, says what it did, one run per call ---------------------------


def test_restore_with_a_missing_backup_copy_changes_nothing(dirs, tmp_path):
    d = dirs.fresh(tmp_path, "rep")
    (bdir,) = (d / BACKUPS).iterdir()
    (bdir / "files" / "tokenizer_config.json").unlink()
    before = everything(d)
    for _ in range(2):
        proc = cli("restore", d)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert str(bdir / "files" / "tokenizer_config.json") in proc.stderr and "Nothing was changed" in proc.stderr
        assert everything(d) == before


def test_restore_after_an_interrupted_run_rolls_it_back_and_says_so(dirs, tmp_path):
    d = dirs.fresh(tmp_path)
    n = writer_ops(d, dirs.plan_path)
    killed = subprocess.run(WRITER + ["kill-at", str(d), str(dirs.plan_path), str(n - 3)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    assert files(d) != dirs.O  # files were replaced before the kill
    note = journal.interrupted_run(str(d))
    assert note and "interrupted" in note, note
    checked = cli("check", d, "--template", "qwen")  # never "aligned" without a word on the half-written dir
    assert f"warning: {note}" in checked.stderr, checked.stderr
    proc = cli("restore", d)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rolled back an interrupted run" in proc.stdout and "as it was before that run" in proc.stdout
    assert files(d) == dirs.O and journal.interrupted_run(str(d)) is None


def test_stacked_runs_each_restore_undoes_one(dirs, tmp_path):
    d = dirs.fresh(tmp_path, "rep")
    first = sorted((d / BACKUPS).iterdir())[0].name
    time.sleep(0.01)
    txn = journal.Transaction(str(d), tool="second run")
    txn.stage("generation_config.json", b'{"eos_token_id": [151645, 151643, 7]}\n')
    txn.stage("Modelfile", b"FROM .\n")
    assert txn.commit() is not None
    one = cli("restore", d)
    assert one.returncode == 0 and files(d) == dirs.R, one.stderr
    two = cli("restore", d)
    assert two.returncode == 0 and files(d) == dirs.O, two.stderr
    assert f"before {first}" in two.stdout
    three = cli("restore", d)
    assert three.returncode == 0 and "nothing to restore" in three.stdout and files(d) == dirs.O
    missing = cli("restore", d, "--backup", "20000101T000000.000000Z")
    assert missing.returncode == 2 and "no backup named" in missing.stderr
    listed = cli("restore", d, "--list", "--backup", first)
    assert listed.returncode == 0 and listed.stdout.count("\n") == 1 and first in listed.stdout
    assert cli("restore", d, "--list", "--backup", "nope").returncode == 2


# -- 3: one writer per dir ----------------------------------------------------------------------------------


HOLD = (
    "import sys, time; sys.path.insert(0, {repo!r}); from lf_template_ext.modeldir import lock\n"
    "with lock.dir_lock({d!r}):\n    print('locked', flush=True); time.sleep({secs})\n"
)


def test_second_writer_waits_or_fails_fast_and_never_rolls_back_a_live_run(dirs, tmp_path):
    d = dirs.fresh(tmp_path, "rep")
    holder = subprocess.Popen([sys.executable, "-c", HOLD.format(repo=str(REPO), d=str(d), secs=3)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    before = everything(d)
    fast = cli("restore", d, "--no-wait")
    assert fast.returncode == 2 and "another lf-template run" in fast.stderr
    assert everything(d) == before
    start = time.time()
    waited = cli("restore", d)
    assert waited.returncode == 0, waited.stderr
    assert "waiting for another lf-template run" in waited.stderr and time.time() - start > 1
    assert holder.wait() == 0 and files(d) == dirs.O

    # a live (slow) commit: its pending manifest and replaced files are not touched by anyone else
    d2 = dirs.fresh(tmp_path, "orig", "live")
    n = writer_ops(d2, dirs.plan_path)
    slow = subprocess.Popen(
        [sys.executable, "-c",
         f"import sys, time; sys.path.insert(0, {str(TESTS)!r}); sys.path.insert(0, {str(REPO)!r})\n"
         "from lf_template_ext.modeldir import atomic; import nothing_lost_writer as w\n"
         f"c = [0]\ndef hook(s, p):\n    c[0] += 1\n    if c[0] == {n - 3}: print('paused', flush=True); time.sleep(3)\n"
         f"atomic.set_fault_hook(hook); w.repair({str(d2)!r}, {str(dirs.plan_path)!r})"],
        stdout=subprocess.PIPE, text=True,
    )
    assert slow.stdout.readline().strip() == "paused"
    assert "writing" in (journal.interrupted_run(str(d2)) or "")
    busy = cli("restore", d2, "--no-wait")
    assert busy.returncode == 2
    assert cli("repair", d2, "--template", "qwen", "--no-wait").returncode == 2
    assert slow.wait() == 0 and "BACKUP" in slow.stdout.read()
    assert files(d2) == dirs.R
    assert [m["status"] for _b, m in journal.list_backups(str(d2))] == ["complete"]


def test_concurrent_repairs_and_restores_keep_the_dir_valid(dirs, tmp_path):
    """N=4 writers (repairs and restores at random) on one dir, 20 rounds: after each round the dir is the
    original or the repaired state, exactly one complete backup iff repaired, and no writer exited 0 for a
    run that was later rolled back behind its back."""
    d = dirs.fresh(tmp_path, "rep")  # repaired once, so a restore always has a history (else: exit 2, no backup)
    rng = random.Random(17)
    reported_restored: set[str] = set()
    committed: set[str] = {b.name for b in (d / BACKUPS).iterdir()}
    for rnd in range(20):
        kinds = [rng.choice(("repair", "restore")) for _ in range(4)]
        procs = []
        for kind in kinds:
            if kind == "repair":
                argv = WRITER + ["repair", str(d), str(dirs.plan_path)]
            else:
                argv = [sys.executable, "-m", "lf_template_ext.cli.main", "restore", str(d)]
            procs.append((kind, subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        for kind, p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, (rnd, kind, out, err)
            if kind == "repair" and out.startswith("BACKUP "):
                committed.add(out.split()[1])
            if kind == "restore" and "to its state before " in out:
                reported_restored.add(out.split("to its state before ")[1].split(":")[0].split()[0])
        state = files(d)
        assert state in (dirs.O, dirs.R), f"round {rnd} ({kinds}): the dir is neither original nor repaired"
        statuses = {b.rsplit("/", 1)[-1]: m["status"] for b, m in journal.list_backups(str(d))}
        assert set(statuses.values()) <= {"complete", "restored"}, (rnd, statuses)
        complete = [s for s, st in statuses.items() if st == "complete"]
        assert len(complete) == (1 if state == dirs.R else 0), (rnd, kinds, statuses)
        assert committed <= set(statuses), "a writer reported a backup that does not exist"
        undone = {s for s, st in statuses.items() if st == "restored"}
        assert undone <= reported_restored, f"round {rnd}: runs undone without a restore saying so: {undone - reported_restored}"
    print(f"\n20 rounds x 4 writers: {len(committed)} repairs committed, {len(reported_restored)} restored")


# -- read-only and full file systems, for every command that writes ---------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not let the tests mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_every_writing_command_on_a_read_only_or_full_fs(dirs, small_fs, fault):
    orig = copy(dirs.orig, small_fs / "orig")
    rep = copy(dirs.rep, small_fs / "rep")
    g = _gguf(small_fs / "gguf")
    (small_fs / "out").mkdir()
    if fault == "read-only":
        assert subprocess.run(["mount", "-o", "remount,ro", str(small_fs)]).returncode == 0
    else:
        fd = os.open(small_fs / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            for size in (1 << 20, 4096, 1):  # fill every last byte
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        assert os.statvfs(small_fs).f_bavail == 0
    before = everything(small_fs)
    commands = {
        "repair": ["repair", orig, "--template", "qwen"],
        "restore": ["restore", rep],
        "emit (default file)": ["emit", orig, "--engine", "ollama", "--template", "qwen"],
        "emit --output in dir": ["emit", orig, "--engine", "vllm", "--template", "qwen", "--output", orig / "chat_template.jinja"],
        "emit --output elsewhere": ["emit", orig, "--engine", "vllm", "--template", "qwen", "--output", small_fs / "out" / "t.jinja"],
        "jinja --output": ["jinja", "--template", "qwen", "--tokenizer", orig, "--output", small_fs / "out" / "t.jinja"],
        "check --report": ["check", orig, "--template", "qwen", "--report", small_fs / "out" / "report.json"],
        "repair gguf": ["repair", g, "--template", "mistral", "--tokenizer", MISTRAL],
    }
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(commands, pool.map(lambda a: cli(*a), commands.values())))
    for name, proc in results.items():
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr[-800:])
        assert "Traceback" not in proc.stderr, (name, proc.stderr)
        assert str(small_fs) in proc.stderr, (name, proc.stderr)  # names the file or dir
        assert ".lfte-tmp" not in proc.stderr, (name, proc.stderr)
    assert everything(small_fs) == before, "something changed on the faulty file system"


def test_immutable_file_is_named_not_the_temp_file(dirs, tmp_path):
    d = dirs.fresh(tmp_path)
    target = d / "tokenizer_config.json"
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        before = everything(d)
        txn = journal.Transaction(str(d))
        for rel, data in dirs.plan.items():
            txn.stage(rel, data)
        with pytest.raises(BadInputError) as err:
            txn.commit()
        message = str(err.value)
        assert str(target) in message and ".lfte-tmp" not in message, message
        assert "free some space" not in message and "chattr -i" in message
        assert everything(d) == before
        with pytest.raises(BadInputError) as err2:
            atomic.write_text_atomic(str(target), "{}")
        assert str(target) in str(err2.value) and ".lfte-tmp" not in str(err2.value)
    finally:
        subprocess.run(["chattr", "-i", str(target)])
