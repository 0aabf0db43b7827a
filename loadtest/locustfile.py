"""Sends fundus images to every target back to back, so a plain ``locust`` run shows prediction time vs total
latency.

Run it with Locust's own command line::

    locust -f loadtest/locustfile.py --headless -u 10 -r 5 -t 1m --host http://127.0.0.1:8080 --csv runs/plain
    locust -f loadtest/locustfile.py --headless -u 10 -r 5 -t 1m --targets targets.yaml --lab-out runs/plain

Options this file adds: ``--targets FILE`` (instead of ``--host``), ``--model NAME`` (the model at
``--host``), ``--protocol v1|v2|v2-binary|sagemaker``, ``--images DIR`` (default: synthetic), ``--pause S``,
``--lab-out DIR`` (where ``requests.csv`` goes) and ``--exporter-port N`` (the lab histograms on 127.0.0.1;
0 = a free port).
For scripted campaigns with run folders and reports use ``dr-serving lab run`` instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gevent
from locust import events

from loadtest.exporter import LabExporter
from loadtest.images import ImageSource
from loadtest.protocols import PROTOCOLS
from loadtest.recorder import RequestRecorder
from loadtest.targets import Target, load_targets
from loadtest.users import LoadUser

logger = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **kwargs: Any) -> None:
    parser.add_argument("--targets", default="", help="YAML/JSON target file (instead of --host)")
    parser.add_argument("--model", default="mobilenet", help="model name served at --host")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="v1", help="v1, v2, v2-binary or sagemaker")
    parser.add_argument("--images", default="", help="folder of JPEG/PNG photos (default: synthetic)")
    parser.add_argument("--pause", type=float, default=0.0, help="each user's pause after an answer (s)")
    parser.add_argument("--lab-out", default="runs/locustfile", help="folder for requests.csv")
    parser.add_argument(
        "--exporter-port", type=int, default=-1, help="serve the lab histograms (0 = free port)"
    )


@events.init.add_listener
def _on_init(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    if options.targets:
        targets = load_targets(options.targets)
    elif options.host:
        targets = [Target(model=options.model, url=options.host)]
    else:
        raise ValueError(
            "Give --host URL (with --model) or --targets FILE so the users know where to send images."
        )
    EveryTargetUser.targets = targets
    EveryTargetUser.protocol = options.protocol
    EveryTargetUser.pause = options.pause
    EveryTargetUser.images = ImageSource.folder(options.images) if options.images else ImageSource.synthetic()
    RequestRecorder(Path(options.lab_out) / "requests.csv").register(environment)
    exporter = LabExporter()
    exporter.register(environment)
    if options.exporter_port >= 0:
        logger.info("lab exporter on http://127.0.0.1:%d/metrics", exporter.serve(port=options.exporter_port))
    # Making the synthetic images blocks for seconds on a busy machine, while gevent's loop keeps its cached
    # "now"; Locust's --run-time timer, armed right after this hook, would then fire that much too early.
    gevent.get_hub().loop.update_now()


class EveryTargetUser(LoadUser):
    """One user per target in turn, sending images as fast as answers come back (plus ``--pause``)."""

    scenario = "locustfile"
