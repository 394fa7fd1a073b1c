"""A real S3-compatible server for the tests: moto's `moto_server`, on 127.0.0.1."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# obstore reads credentials from the standard variables; moto accepts any.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_ENDPOINT_URL_S3", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MotoServer:
    def __init__(self, endpoint: str | None = None) -> None:
        """A new server on a free port, or (with `endpoint`) one already running."""
        self.port = int(endpoint.rsplit(":", 1)[1]) if endpoint else free_port()
        self.endpoint = endpoint or f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        executable = shutil.which("moto_server") or str(
            Path(sys.executable).with_name("moto_server")
        )
        self.process = subprocess.Popen(  # noqa: S603  (our own test server)
            [executable, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None:
                    raise RuntimeError("moto_server exited during start-up") from None
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start within 30 seconds")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def create_bucket(self, name: str | None = None) -> str:
        bucket = name or f"test-{secrets.token_hex(6)}"
        response = httpx.put(f"{self.endpoint}/{bucket}", timeout=10)
        response.raise_for_status()
        return bucket
