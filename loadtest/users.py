"""Locust users that send fundus images to a target and tag every request with the target's labels.

Each user takes one target (``targets`` in turn), sends images from ``images`` over ``protocol`` and marks a
request failed when the answer is not a prediction. The request's ``context`` carries scenario, target, model,
pool, arch, instance type, mode, protocol, phase and the current user count; the recorder and the exporter
read the server's own timings and node labels from the answer's ``X-DR-*`` headers.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

from locust import HttpUser, task
from locust.exception import StopUser

from loadtest.images import ImageSource
from loadtest.protocols import build_request, read_answer
from loadtest.targets import Target

__all__ = ["LoadUser", "SequentialUser", "TargetUser", "user_class_for"]

_NEXT_TARGET = itertools.count()


class TargetUser(HttpUser):
    """Sends images to one target; subclasses decide when and how often."""

    abstract = True

    targets: ClassVar[list[Target]] = []
    """The targets to measure; each new user takes the next one in turn."""

    images: ClassVar[ImageSource | None] = None
    """Where the images come from (pre-encoded; required)."""

    protocol: ClassVar[str] = "v1"
    """``v1`` (raw image bytes) or ``v2`` (BYTES input)."""

    scenario: ClassVar[str] = "locustfile"
    """Scenario name written on every request."""

    request_timeout: ClassVar[float] = 300.0
    """Client timeout in seconds; longer than any cold start so a scale-from-zero is measured, not cut off."""

    host = "http://127.0.0.1"
    """Placeholder: every request goes to the chosen target's URL."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.targets:
            raise ValueError(
                f"{type(self).__name__}.targets is empty; give the user class at least one Target."
            )
        if self.images is None:
            raise ValueError(f"{type(self).__name__}.images is not set; give the user class an ImageSource.")
        self.target = self.targets[next(_NEXT_TARGET) % len(self.targets)]
        self.client.base_url = self.target.base_url

    def context(self) -> dict[str, Any]:
        """Labels added to every request event of this user."""
        runner = self.environment.runner
        return {
            **self.target.labels(),
            "scenario": self.scenario,
            "protocol": self.protocol,
            # The count the runner drives towards (the shape's step), not the transient count while spawning.
            "users": (runner.target_user_count or runner.user_count) if runner is not None else 1,
            # The users running right now: below ``users`` while a step's users are still spawning.
            "active_users": runner.user_count if runner is not None else 1,
        }

    def send(self, *, phase: str = "warm") -> None:
        """Send the next image once and record it under ``phase``."""
        assert self.images is not None
        prepared = build_request(self.protocol, self.target.model, self.images.next(), host=self.target.host)
        with self.client.post(
            prepared.path,
            data=prepared.body,
            headers=prepared.headers,
            name=f"{self.target.name} {self.protocol}",
            context={"phase": phase},
            catch_response=True,
            timeout=self.request_timeout,
        ) as response:
            answer = read_answer(response)
            if not answer.ok:
                response.failure(answer.problem)


class LoadUser(TargetUser):
    """Sends requests back to back, waiting ``pause`` seconds after each answer (closed loop)."""

    abstract = True

    pause: ClassVar[float] = 0.0
    """Seconds each user waits after an answer before its next request."""

    def wait_time(self) -> float:
        """The pause between two requests of this user."""
        return self.pause

    @task
    def predict(self) -> None:
        """Send one image."""
        self.send()


class SequentialUser(TargetUser):
    """Sends ``discard`` discarded then ``requests`` warm requests, ``interval`` seconds apart; then stops."""

    abstract = True

    discard: ClassVar[int] = 1
    """Requests sent first and kept out of every statistic (the published warm-up discards one)."""

    requests: ClassVar[int] = 25
    """Warm requests after the discarded ones (published: 25)."""

    interval: ClassVar[float] = 5.0
    """Seconds between the end of one answer and the next request (published: 5)."""

    def on_start(self) -> None:
        """Start counting this user's requests."""
        self.sent = 0

    def wait_time(self) -> float:
        """The interval between two requests."""
        return self.interval

    @task
    def next_request(self) -> None:
        """Send the next request of the sequence, or stop once all were sent."""
        if self.sent >= self.discard + self.requests:
            raise StopUser()
        self.send(phase="discarded" if self.sent < self.discard else "warm")
        self.sent += 1


def user_class_for(base: type[TargetUser], target: Target, index: int, **attributes: Any) -> type[TargetUser]:
    """A concrete subclass of ``base`` bound to one target (one class per target, for fixed counts)."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in target.name)
    return type(
        f"{base.__name__}_{index}_{safe}", (base,), {"targets": [target], "abstract": False, **attributes}
    )
