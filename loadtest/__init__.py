"""The dr-serving load lab: Locust campaigns, Prometheus metrics and reports.

Only Locust-free pieces are re-exported here: importing Locust monkey-patches the process with gevent, so the
users, shapes and campaign modules are imported explicitly where a campaign runs (see ``loadtest/run.py``).
"""

from __future__ import annotations

from loadtest.images import Image, ImageSource
from loadtest.recorder import COLUMNS, PHASES, RequestRecorder
from loadtest.spec import CampaignSpec
from loadtest.summary import RunSummary
from loadtest.targets import Target, load_targets, parse_targets

__all__ = [
    "COLUMNS",
    "PHASES",
    "CampaignSpec",
    "Image",
    "ImageSource",
    "RequestRecorder",
    "RunSummary",
    "Target",
    "load_targets",
    "parse_targets",
]
