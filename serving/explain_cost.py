"""Cost of ``:explain`` against ``:predict`` on one served model, measured in one interleaved run.

Usage: ``python -m serving.explain_cost MODEL_DIR [ROUNDS]``. Starts the predictor on 127.0.0.1, sends
``ROUNDS`` raw JPEG ``:predict`` requests before any explanation (the explainer not loaded), then ``ROUNDS``
rounds of one ``:predict`` followed by one ``:explain`` (sequential, so they never compete for the CPU), and
prints the medians: server prediction time and client latency of ``:predict`` before and after, and the
client latency and ``explain_ms`` of ``:explain``.
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx

from serving.client import build_request
from serving.launcher import PredictorProcess
from serving.zoo.synthetic import encode_image, make_fundus_image


def main(model_dir: str, rounds: int = 30) -> None:
    """Measure and print."""
    photo = encode_image(make_fundus_image(2, size=448, seed=5), "JPEG")
    headers = build_request("v1", "m", photo).headers
    with (
        PredictorProcess(model_dir, model_name="m") as process,
        httpx.Client(base_url=process.url, timeout=120.0, trust_env=False) as http,
    ):

        def timed(route: str) -> tuple[float, dict]:
            started = time.perf_counter()
            response = http.post(f"/v1/models/m:{route}", content=photo, headers=headers)
            response.raise_for_status()
            return (time.perf_counter() - started) * 1000, response.json()

        for _ in range(3):
            timed("predict")
        before = [timed("predict") for _ in range(rounds)]
        timed("explain")  # loads the explainer
        after, explained = [], []
        for _ in range(rounds):
            after.append(timed("predict"))
            explained.append(timed("explain"))

    def median(values: list[float]) -> float:
        return statistics.median(values)

    print(f"rounds: {rounds}, 448 px JPEG, one request at a time")
    for label, runs in (("predict, explainer not loaded", before), ("predict, between explanations", after)):
        print(
            f"{label}: latency p50 {median([t for t, _ in runs]):.1f} ms, server prediction p50 "
            f"{median([a['prediction_ms'] for _, a in runs]):.1f} ms"
        )
    print(
        f"explain: latency p50 {median([t for t, _ in explained]):.1f} ms, explain_ms p50 "
        f"{median([a['explain_ms'] for _, a in explained]):.1f} ms"
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)
