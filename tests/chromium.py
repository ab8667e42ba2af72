"""Open a page in headless Chromium, collect its console errors and save a screenshot.

Talks the DevTools protocol over `--remote-debugging-pipe` (JSON messages ending in a NUL byte,
commands on fd 3, replies and events on fd 4), so no websocket library or port is needed.
Errors are uncaught exceptions, console.error/console.assert calls and log entries of level
"error" (which include resources that failed to load).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def require_chromium() -> str:
    """Chromium's path; the test skips without it, except in CI (CI=true), where it fails."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (make test installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return path


class _Pipe:
    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int, deadline: float):
        self.proc, self.deadline = proc, deadline
        self.to_browser, self.from_browser = to_browser, from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read_message(self, timeout: float) -> dict | None:
        while b"\0" not in self.buffer:
            wait = min(timeout, self.deadline - time.monotonic())
            if wait <= 0 or not select.select([self.from_browser], [], [], wait)[0]:
                return None
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message(self.deadline - time.monotonic())
            if reply is None:
                raise TimeoutError(f"no reply from chromium to {method}")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            event = self._read_message(self.deadline - time.monotonic())
            if event is None:
                raise TimeoutError(f"chromium never sent {method}")
            self.events.append(event)

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            event = self._read_message(left)
            if event is not None:
                self.events.append(event)


def _errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif e.get("method") == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append(f"{p['entry'].get('text', '')} {p['entry'].get('url', '')}".strip())
    return out


def _high_fd(fd: int) -> int:
    """A duplicate of `fd` numbered ≥ 10, so that putting the pipes on fds 3 and 4 clobbers nothing."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


def open_page(
    html: Path, screenshot: Path, width: int = 1280, height: int = 2000, timeout: float = 90.0
) -> list[str]:
    """Load `html` in headless Chromium, save a PNG screenshot; return the console errors."""
    exe = require_chromium()
    cmd_r, cmd_w = os.pipe()
    res_r, res_w = os.pipe()
    cmd_r, res_w = _high_fd(cmd_r), _high_fd(res_w)

    def child_fds() -> None:
        os.dup2(cmd_r, 3)
        os.dup2(res_w, 4)

    with tempfile.TemporaryDirectory(prefix="bitlens-chromium-") as profile:
        proc = subprocess.Popen(
            [
                exe,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=child_fds,
        )
        os.close(cmd_r)
        os.close(res_w)
        pipe = _Pipe(proc, cmd_w, res_r, time.monotonic() + timeout)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                pipe.send(domain, session=session)
            pipe.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired")
            pipe.drain(0.5)
            shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            errors = _errors(pipe.events)
            try:
                pipe.send("Browser.close")
            except (RuntimeError, TimeoutError):
                pass
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(cmd_w)
            os.close(res_r)
    return errors
