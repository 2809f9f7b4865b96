"""The gateway as its own process (`python -m gateway serve`), for tests where replicas
must not share anything but the store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml

from tests.redis_server import free_port


class GatewayProcess:
    def __init__(self, config: dict[str, Any], folder: Path, name: str, *args: str) -> None:
        """`args`: more `switchboard serve` options (e.g. `--log-level`, `debug`)."""
        self.port = free_port()
        self._args = args
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = folder / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log = self._log = folder / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        command = [sys.executable, "-m", "gateway", "serve", "--config", str(self.config_path)]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [*command, "--port", str(self.port), *self._args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # a cold start imports a lot: on a loaded 2-core machine it has taken over 60 s
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self._log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the gateway did not start: {self._log.read_text()}")

    def terminate(self) -> None:
        """SIGTERM, as a process manager stops it; `wait()` for the exit status."""
        assert self._process is not None
        self._process.terminate()

    def wait(self, timeout: float) -> int:
        assert self._process is not None
        code = self._process.wait(timeout)
        self._process = None
        return code

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            self._process = None

    def sdk(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0, timeout=10)

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.url}{path}", timeout=5).json()
