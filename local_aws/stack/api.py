"""Airflow's REST API (/api/v2) as the stack calls it: a JWT from SimpleAuthManager's /auth/token."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from local_aws.stack.environment import ADMIN_USER, admin_password
from local_aws.stack.errors import StackError


class RestApi:
    """Mixed into `Stack`: needs `self.api_url`, `self.home` and `self._token`."""

    def token(self) -> str:
        if self._token is None:
            body = json.dumps({"username": ADMIN_USER, "password": admin_password(self.home)}).encode()
            request = urllib.request.Request(
                f"{self.api_url}/auth/token", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self._token = json.loads(response.read())["access_token"]
        return self._token

    def _request(
        self, method: str, path: str, body: Any = None, auth: bool = True, timeout: float = 30
    ) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def _get_json(self, path: str, auth: bool = True) -> Any:
        return self._request("GET", path, auth=auth)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call /api/v2 (retrying transient errors: SQLite is busy now and then with four writers)."""
        for attempt in range(5):
            try:
                return self._request(method, f"/api/v2{path}", body)
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0:
                    self._token = None
                    continue
                if err.code < 500 or attempt == 4:
                    detail = err.read().decode(errors="replace")[:500]
                    raise StackError(f"{method} /api/v2{path} → {err.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                if attempt == 4:
                    raise
            time.sleep(1 + attempt)
        raise AssertionError("unreachable")
