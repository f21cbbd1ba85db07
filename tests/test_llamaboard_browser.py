"""Opt-in: LLaMA Board's Export tab clicked in a real headless browser (LF_TEMPLATE_EXT_BROWSER=1).

Starts `llamafactory-cli webui` with LF_TEMPLATE_EXT=1 (offline, a free GRADIO_SERVER_PORT, its working dir
holding a tiny Qwen2.5 and a LoRA adapter under LLaMA Board's saves/) and drives Debian's `chromium` through
`chromedriver` with the W3C WebDriver protocol (a small urllib client below: no selenium in the test venv).
The test types the model path, picks the adapter in the checkpoint dropdown, types the export dir, clicks
Export, waits for "Model exported." and checks that the exported dir is repaired (record, template,
`lf-template check` exit 0) and byte-identical to `llamafactory-cli export` with the same arguments (SERVING.md
up to its own path). It saves a screenshot of the finished Export tab to docs/images/llamaboard-export.png
(LF_TEMPLATE_EXT_BROWSER_SCREENSHOT=FILE writes it elsewhere).

    apt-get install chromium chromium-driver
    LF_TEMPLATE_EXT_BROWSER=1 python -m pytest tests/test_llamaboard_browser.py -p no:xdist -q

The web UI's training and export code paths run in the default suite: tests/test_llamaboard.py.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tiny_models import write_yaml

ENV = "LF_TEMPLATE_EXT_BROWSER"
CHROMIUM = os.environ.get("LF_TEMPLATE_EXT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LF_TEMPLATE_EXT_CHROMEDRIVER", "/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parent.parent
SCREENSHOT = Path(os.environ.get("LF_TEMPLATE_EXT_BROWSER_SCREENSHOT", REPO / "docs" / "images" / "llamaboard-export.png"))
MODEL_NAME = "Qwen2.5-1.5B-Instruct"  # LLaMA Board fills the template dropdown from it: qwen

pytestmark = [
    pytest.mark.optin,
    pytest.mark.skipif(os.environ.get(ENV) != "1", reason=f"browser suite: set {ENV}=1 (needs chromium + chromedriver)"),
    pytest.mark.slow,
]

W3C_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, seconds: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {seconds}s:\n{log.read_text()[-4000:]}")


class WebDriver:
    """The few W3C WebDriver commands the test needs, over chromedriver's HTTP endpoint."""

    def __init__(self, base: str) -> None:
        self.base = base
        caps = {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1200", "--lang=en-US"],
        }}  # fmt: skip
        self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]

    def _call(self, method: str, path: str, body: object = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                answer = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise AssertionError(f"WebDriver {method} {path}: {e.code} {e.read()[:2000]!r}") from None
        value = answer.get("value")
        return {"sessionId": answer.get("sessionId") or (value or {}).get("sessionId")} if path == "/session" else value

    def cmd(self, method: str, path: str, body: object = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self.cmd("POST", "/url", {"url": url})

    def find(self, xpath: str, seconds: float = 30) -> str:
        """The first displayed element ``xpath`` matches, waiting up to ``seconds`` for one."""
        deadline = time.time() + seconds
        while True:
            found = [e[W3C_ELEMENT] for e in self.cmd("POST", "/elements", {"using": "xpath", "value": xpath})]
            shown = [e for e in found if self.cmd("GET", f"/element/{e}/displayed")]  # gradio keeps hidden copies
            if shown:
                return shown[0]
            if time.time() > deadline:
                raise AssertionError(f"no element {xpath}")
            time.sleep(0.3)

    def click(self, element: str) -> None:
        self.cmd("POST", f"/element/{element}/click", {})

    def clear(self, element: str) -> None:
        self.cmd("POST", f"/element/{element}/clear", {})

    def type(self, element: str, text: str) -> None:
        self.cmd("POST", f"/element/{element}/value", {"text": text})

    def prop(self, element: str, name: str):
        return self.cmd("GET", f"/element/{element}/property/{name}")

    def script(self, code: str, *args):
        return self.cmd("POST", "/execute/sync", {"script": code, "args": list(args)})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.cmd("GET", "/screenshot"))

    def quit(self) -> None:
        try:
            self.cmd("DELETE", "")
        except AssertionError:
            pass


def _field(label: str) -> str:
    """The input or textarea of the component labelled ``label`` (LLaMA Board's English locale): a textbox or
    multiselect dropdown (gradio 5: a label holding the caption and the field) or a single dropdown (aria-label)."""
    return (
        f"//label[.//span[normalize-space(text())='{label}']]//*[self::textarea or self::input]"
        f" | //input[@aria-label='{label}']"
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def board(tmp_path):
    """LLaMA Board's working dir: a tiny base model, a LoRA adapter in saves/, the user config (English, the model name)."""
    import yaml
    from tiny_models import QWEN25, build_lora_adapter, build_tiny_model

    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(tool):
            pytest.fail(f"{ENV}=1 but {tool} is missing: apt-get install chromium chromium-driver")
    base = build_tiny_model(tmp_path / "base", QWEN25)
    root = tmp_path / "board"
    build_lora_adapter(base, root / "saves" / MODEL_NAME / "lora" / "adapter_tiny")
    (root / "llamaboard_cache").mkdir(parents=True)
    config = {"lang": "en", "hub_name": "huggingface", "last_model": MODEL_NAME, "path_dict": {}, "cache_dir": None}
    (root / "llamaboard_cache" / "user_config.yaml").write_text(yaml.safe_dump(config))
    return root, base


def test_export_tab_in_a_real_browser_repairs_the_export(board, tmp_path):
    root, base = board
    export_dir = tmp_path / "exported"
    port, driver_port = _free_port(), _free_port()
    env = dict(
        os.environ, LF_TEMPLATE_EXT="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="", GRADIO_SERVER_PORT=str(port),
        GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False", BROWSER="true",  # launch(inbrowser=True): no-op
        PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    )  # fmt: skip
    ui_log, driver_log = tmp_path / "webui.log", tmp_path / "chromedriver.log"
    started = time.time()
    with open(ui_log, "w") as ui_out, open(driver_log, "w") as drv_out:
        webui = subprocess.Popen([str(Path(sys.executable).parent / "llamafactory-cli"), "webui"], cwd=root, env=env,
                                 stdout=ui_out, stderr=subprocess.STDOUT)  # fmt: skip
        chromedriver = subprocess.Popen([CHROMEDRIVER, f"--port={driver_port}"], stdout=drv_out, stderr=subprocess.STDOUT)
        browser = None
        try:
            _wait_http(f"http://127.0.0.1:{driver_port}/status", 30, chromedriver, driver_log)
            _wait_http(f"http://127.0.0.1:{port}/", 180, webui, ui_log)
            browser = WebDriver(f"http://127.0.0.1:{driver_port}")
            browser.get(f"http://127.0.0.1:{port}/")
            # the top bar: LLaMA Board filled the model name (user config) and, from it, the template
            model_path = browser.find(_field("Model path"))
            deadline = time.time() + 30
            while browser.prop(browser.find(_field("Chat template")), "value") != "qwen":
                assert time.time() < deadline, "LLaMA Board did not fill the template from the model name"
                time.sleep(0.3)
            browser.clear(model_path)
            browser.type(model_path, str(base))
            # the checkpoint dropdown lists saves/<model>/lora/*: pick the adapter
            checkpoint = browser.find(_field("Checkpoint path"))
            browser.click(checkpoint)
            browser.click(browser.find("//li[@role='option' and @aria-label='adapter_tiny']"))
            # the Export tab: export dir, then Export
            browser.click(browser.find("//button[@role='tab' and normalize-space(.)='Export']"))
            target = browser.find(_field("Export dir"))
            browser.click(target)
            browser.type(target, str(export_dir))
            browser.click(browser.find("//button[normalize-space(.)='Export' and not(@role='tab')]"))
            deadline = time.time() + 300
            while not browser.script(
                "return [...document.querySelectorAll('textarea')].some(t => t.value === 'Model exported.')"
            ):
                assert time.time() < deadline, ui_log.read_text()[-4000:]
                assert webui.poll() is None, ui_log.read_text()[-4000:]
                time.sleep(0.5)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.write_bytes(browser.screenshot())
        finally:
            if browser is not None:
                browser.quit()
            _stop(chromedriver)
            _stop(webui)
    elapsed = time.time() - started
    print(f"browser export: {elapsed:.1f}s; screenshot {SCREENSHOT}")

    log = ui_log.read_text()
    assert f"[lf-template-ext] {export_dir}: served as LF template 'qwen' (fix): " in log, log[-4000:]
    record = json.loads((export_dir / "lf_template_ext.json").read_text())
    assert record["template"] == "qwen" and record["source"] == "export"
    jinja = (export_dir / "chat_template.jinja").read_text()
    assert jinja.startswith("{#- Generated by lf-template-ext")
    assert json.loads((export_dir / "tokenizer_config.json").read_text())["chat_template"] == jinja
    check = subprocess.run([sys.executable, "-m", "lf_template_ext.cli.main", "check", str(export_dir)],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    # exactly what `llamafactory-cli export` writes for the arguments the Export tab built (save_model's dict)
    cli_dir = tmp_path / "cli" / "exported"  # the same name: SERVING.md names the dir (--served-model-name)
    adapter = root / "saves" / MODEL_NAME / "lora" / "adapter_tiny"
    cfg = {
        "model_name_or_path": str(base), "adapter_name_or_path": str(adapter), "finetuning_type": "lora",
        "template": "qwen", "export_dir": str(cli_dir), "export_size": 5, "export_device": "cpu",
        "export_legacy_format": False, "trust_remote_code": True,
    }  # fmt: skip
    cmd = [str(Path(sys.executable).parent / "llamafactory-cli"), "export", str(write_yaml(tmp_path / "cli.yaml", cfg))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    files = sorted(p.name for p in export_dir.iterdir() if p.is_file())
    assert files == sorted(p.name for p in cli_dir.iterdir() if p.is_file()), files
    for name in files:
        ours, cli = (export_dir / name).read_bytes(), (cli_dir / name).read_bytes()
        if name == "SERVING.md":  # names its own dir
            ours, cli = ours.replace(str(export_dir).encode(), b"DIR"), cli.replace(str(cli_dir).encode(), b"DIR")
        assert ours == cli, f"{name}: the Export tab's export differs from `llamafactory-cli export`'s"
