"""A small headless-Chromium driver over the Chrome DevTools Protocol (no new dependency: `websockets`,
already in the virtualenv, speaks to the browser's debugging socket).

    with Chromium(tmp_path) as browser:
        browser.goto("http://localhost:8080/")
        browser.wait_for("document.querySelector('h1') !== null")
        browser.screenshot(path)

Protocol reference: https://chromedevtools.github.io/devtools-protocol/ (Page.navigate,
Runtime.evaluate, Page.captureScreenshot). Chromium is Debian's `chromium` package (`.ci/run` installs it).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_binary() -> str | None:
    explicit = os.environ.get("ORCHARD_CHROMIUM")
    if explicit:
        return explicit
    return next((path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None)


class BrowserError(AssertionError):
    pass


class Chromium:
    def __init__(self, workdir: Path, width: int = 1400, height: int = 1000, timeout_s: float = 30):
        binary = chromium_binary()
        if not binary:
            raise BrowserError("no Chromium: install Debian's `chromium` package (or set ORCHARD_CHROMIUM)")
        self.profile = workdir / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "DevToolsActivePort").unlink(missing_ok=True)  # a previous browser's port
        self.timeout_s = timeout_s
        self.process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._ids = itertools.count(1)
        self.ws = None
        try:
            self._connect()
        except Exception:
            self.close()
            raise

    def _connect(self) -> None:
        from websockets.sync.client import connect

        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BrowserError(f"Chromium did not open its debugging port (exit {self.process.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.loads(response.read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, **params: Any) -> dict:
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails'].get('exception', {})}")
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        time.sleep(0.2)
        self.wait_for("document.readyState === 'complete'")

    def wait_for(self, condition: str, timeout_s: float | None = None, what: str = "") -> Any:
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(condition)
            except BrowserError:
                last = None  # the page is navigating
            if last:
                return last
            time.sleep(0.25)
        url = self.eval("location.href")
        text = (self.eval("document.body ? document.body.innerText : ''") or "")[:1500]
        raise BrowserError(f"timed out waiting for {what or condition} on {url}; the page says:\n{text}")

    def click(self, element: str, what: str = "") -> None:
        """A real mouse click (press and release) at the middle of the element a JS expression names."""
        self.wait_for(f"!!({element})", what=what or element)
        self.eval(f"({element}).scrollIntoView({{block: 'center'}})")
        box = self.eval(
            f"(() => {{ const r = ({element}).getBoundingClientRect(); "
            "return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def text(self) -> str:
        return self.eval("document.body ? document.body.innerText : ''") or ""

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:  # the browser may be gone already
                pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
