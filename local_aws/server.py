"""Start, reset and stop the sandbox: one moto server, one port, every service."""

from __future__ import annotations

import logging
import time
import urllib.request

from local_aws import DEFAULT_PORT, engine, faults
from local_aws.keepalive import KeepAliveMotoServer

log = logging.getLogger(__name__)


class Sandbox:
    """The sandbox in this process. `start()` installs the job engine into moto first."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        self.host = host
        self.port = port
        self._server: KeepAliveMotoServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Sandbox:
        engine.install(endpoint_url=self.url)
        faults.install()  # ORCHARD_SANDBOX_FAULTS and the /_orchard/faults route (local_aws/faults.py)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per API call
        self._server = KeepAliveMotoServer(  # HTTP/1.1 persistent connections, as AWS (keepalive.py)
            ip_address=self.host, port=self.port, verbose=False
        )
        self._server.start()
        self._wait_until_up()
        log.info("local AWS sandbox listening on %s", self.url)
        return self

    def reset(self) -> None:
        """Forget every resource and stop every running job (what tests do between cases)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=30).read()

    def stop(self) -> None:
        engine.stop_all_jobs()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _wait_until_up(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not is_up(self.url):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sandbox did not answer on {self.url} in {timeout_s:.0f} s")
            time.sleep(0.05)


def is_up(url: str) -> bool:
    """Whether a sandbox answers on `url`."""
    try:
        urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2).read()
        return True
    except OSError:
        return False
