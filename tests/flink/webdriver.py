"""A minimal W3C WebDriver client (urllib only) for Debian's headless Chromium and ChromeDriver
(packages ``chromium`` and ``chromium-driver``, installed by ``./dev``'s system-package step).

Only what the web-UI test needs: open a page, find elements by CSS selector or XPath, wait for them,
click, read text, take a screenshot. ChromeDriver listens on 127.0.0.1 on a free port and is stopped
with the session. Chromium runs with the flags this machine needs (no sandbox as root, no GPU, no
background networking: the network is closed).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from cluster import free_port

CHROMIUM = os.environ.get("HELIOSDB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HELIOSDB_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1600,1000"]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def available() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


class Browser:
    def __init__(self):
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="heliosdb-chromium-")
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.2)
        caps = {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": FLAGS + [f"--user-data-dir={self.profile}"]}}
        self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"WebDriver {method} {path}: {e.read().decode(errors='replace')[:500]}") from None

    def _s(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    def find_all(self, xpath: str) -> list[str]:
        return [e[ELEMENT] for e in self._s("POST", "/elements", {"using": "xpath", "value": xpath})]

    def wait(self, xpath: str, timeout: float = 30) -> str:
        """The first element matching ``xpath``, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find_all(xpath)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no element {xpath} within {timeout}s; page text:\n{self.text()[:3000]}")
            time.sleep(0.5)

    def click(self, element: str) -> None:
        self._s("POST", f"/element/{element}/click", {})

    def click_on(self, xpath: str, timeout: float = 30) -> None:
        """Click the first element matching ``xpath``, finding it again while the page re-renders or
        lays it out (Flink's web UI refreshes its tables every few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.click(self.wait(xpath, max(1.0, deadline - time.monotonic())))
            except RuntimeError as e:
                transient = any(t in str(e) for t in ("stale element", "not interactable", "click intercepted"))
                if not transient or time.monotonic() > deadline:
                    raise RuntimeError(f"{xpath}: {e}") from None
                time.sleep(0.5)

    def type(self, element: str, text: str) -> None:
        self._s("POST", f"/element/{element}/value", {"text": text})

    def text(self, element: str | None = None) -> str:
        if element is None:
            return self._s("POST", "/execute/sync", {"script": "return document.body.innerText", "args": []})
        return self._s("GET", f"/element/{element}/text")

    def screenshot(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(base64.b64decode(self._s("GET", "/screenshot")))

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._s("DELETE", "")
        except (OSError, RuntimeError):
            pass
        finally:
            if self.driver.poll() is None:
                self.driver.terminate()
                try:
                    self.driver.wait(20)
                except subprocess.TimeoutExpired:
                    self.driver.kill()
                    self.driver.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
