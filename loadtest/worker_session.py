"""The worker side of a distributed campaign: the user classes a master describes, and one connection to it.

``python -m loadtest.worker`` (which applies gevent's patching first) runs a ``WorkerSession``: Locust's own
``WorkerRunner`` whose request rows (``loadtest.recorder.request_row``) ride to the master on Locust's
periodic worker report (``report_to_master``); ``loadtest.distributed`` is the master side.
"""

from __future__ import annotations

import logging
from typing import Any

import psutil
from locust.env import Environment

from loadtest.images import ImageSource
from loadtest.recorder import request_row
from loadtest.targets import Target
from loadtest.users import LoadUser, SequentialUser, TargetUser, user_class_for

__all__ = ["USER_BASES", "WorkerSession", "image_source", "user_classes_from"]

log = logging.getLogger(__name__)

#: The user bases a description may name.
USER_BASES: dict[str, type[TargetUser]] = {"LoadUser": LoadUser, "SequentialUser": SequentialUser}


def image_source(description: dict[str, Any]) -> ImageSource:
    """The images a ``drlab_users`` message describes (a folder, or synthetic ones)."""
    if description.get("folder"):
        return ImageSource.folder(description["folder"])
    return ImageSource.synthetic(
        count=description["count"], size=description["size"], seed=description["seed"]
    )


def user_classes_from(message: dict[str, Any]) -> list[type[TargetUser]]:
    """Rebuild the master's user classes (same names, targets and attributes) from their descriptions."""
    images = image_source(message["images"])
    classes = []
    for item in message["users"]:
        cls = user_class_for(
            USER_BASES[item["base"]],
            Target.from_dict(item["target"]),
            item["index"],
            images=images,
            protocol=item["protocol"],
            scenario=item["scenario"],
            **item["attributes"],
        )
        if cls.__name__ != item["name"]:
            raise ValueError(
                f"Rebuilt user class {cls.__name__!r} does not match the master's {item['name']!r}."
            )
        classes.append(cls)
    return classes


class WorkerSession:
    """One connection to a master: a worker runner whose request rows ride on its stats reports."""

    def __init__(self, host: str, port: int) -> None:
        self.rows: list[dict[str, Any]] = []
        self.process = psutil.Process()
        self.process.cpu_percent()
        self.environment = Environment(user_classes=[])
        self.environment.events.request.add_listener(self._on_request)
        self.environment.events.report_to_master.add_listener(self._on_report)
        self.runner = self.environment.create_worker_runner(host, port)
        self.runner.register_message("drlab_users", self._on_users)

    def _on_users(self, environment: Environment, msg: Any, **kwargs: Any) -> None:
        environment.user_classes = user_classes_from(msg.data)
        log.info("received %d user classes", len(environment.user_classes))

    def _on_request(
        self,
        *,
        response_time: float | None = None,
        response_length: int | None = 0,
        response: Any = None,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.rows.append(
            request_row(
                response_time=response_time,
                response_length=response_length,
                response=response,
                context=context,
                exception=exception,
                start_time=start_time,
            )
        )

    def _on_report(self, client_id: str, data: dict[str, Any], **kwargs: Any) -> None:
        # Rows and the user count leave together: a report with no users running holds every row sent.
        data["drlab_rows"], self.rows = self.rows, []
        data["drlab_worker_users"] = self.runner.user_count
        # This process's CPU since the last report (Locust's own figure is only refreshed every 5 s).
        data["drlab_cpu"] = self.process.cpu_percent()

    def wait(self) -> None:
        """Block until the master tells this worker to quit."""
        self.runner.greenlet.join()
