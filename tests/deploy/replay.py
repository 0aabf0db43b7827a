"""A real ``kubernetes.client.ApiClient`` whose transport answers from the JSON files in ``recorded/``.

``Replay`` replaces the client's connection pool: each (method, path) is answered with recorded files in order
(the last one repeats) and every request is kept, so URL building, query parameters and the client's own model
deserialisation are exercised as against an API server. A recorded ``Status`` body answers with its ``code``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import urllib3
from kubernetes import client

RECORDED = Path(__file__).with_name("recorded")


class Replay:
    """A urllib3-like pool answering (method, path) with recorded files in order (the last repeats)."""

    def __init__(self, routes: dict[tuple[str, str], list[str]]) -> None:
        self.routes = {key: list(files) for key, files in routes.items()}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []

    def request(self, method: str, url: str, **kwargs: object) -> urllib3.HTTPResponse:
        """Answer one request from the recorded files."""
        parts = urlsplit(url)
        self.requests.append((method, parts.path, parse_qs(parts.query)))
        files = self.routes.get((method, parts.path))
        if not files:
            raise AssertionError(f"Unexpected request {method} {parts.path}")
        name = files.pop(0) if len(files) > 1 else files[0]
        body = (RECORDED / name).read_bytes()
        status = json.loads(body).get("code", 200) if json.loads(body).get("kind") == "Status" else 200
        return urllib3.HTTPResponse(
            body=io.BytesIO(body),
            status=status,
            reason="OK" if status == 200 else "Not Found",
            headers={"Content-Type": "application/json"},
            preload_content=False,
        )


def api_with(
    routes: dict[tuple[str, str], list[str]], *, host: str = "https://127.0.0.1:6443"
) -> tuple[client.ApiClient, Replay]:
    """A real ApiClient for ``host`` whose REST transport replays ``routes`` (websockets go to ``host``)."""
    configuration = client.Configuration(host=host)
    api = client.ApiClient(configuration)
    replay = Replay(routes)
    api.rest_client.pool_manager = replay
    return api, replay
