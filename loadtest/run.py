"""The child process that runs one campaign: ``python -m loadtest.run '<options as JSON>'``.

gevent's monkey-patching must come before any other import (Locust needs it, and patching a process that has
already imported TensorFlow, asyncio or kserve is unsafe), so ``dr-serving lab run`` parses and checks the
options in its own process, then starts this module in a fresh interpreter. Prints one ``Error: ...`` line and
exits 1 on a runtime failure.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from loadtest.scenarios.options import UsageError  # noqa: E402

__all__ = ["main", "run_campaign"]


def _images(options: argparse.Namespace) -> Any:
    from loadtest.images import ImageSource

    if options.images:
        return ImageSource.folder(options.images)
    return ImageSource.synthetic(count=options.image_count, size=options.image_size, seed=options.seed)


def _models(options: argparse.Namespace) -> dict[str, Path]:
    models = {}
    for spec in options.model_dir or [f"mobilenet={Path('models') / 'mobilenet'}"]:
        name, _, path = spec.partition("=")
        if not path:
            name, path = Path(spec).name, spec
        models[name] = Path(path)
    return models


def run_campaign(options: argparse.Namespace) -> Path:
    """Run the scenario described by ``options`` and write its run folder (and report); returns the folder."""
    from loadtest.campaign import Campaign, make_run_dir
    from loadtest.emulation import DEFAULT_POOLS, ENVIRONMENT, LocalFleet, machine_arch
    from loadtest.prometheus_local import LocalPrometheus, PrometheusError, ScrapeTarget
    from loadtest.scenarios import SCENARIOS
    from loadtest.targets import Target, load_targets

    scenario = options.scenario
    if scenario == "shape":
        from loadtest.scenarios.shape import shape_settings
        from loadtest.shapes import make_shape

        try:
            make_shape(options.shape, **shape_settings(options.shape, options.shape_settings))
        except (TypeError, ValueError) as exc:
            raise UsageError(str(exc)) from exc
    images = _images(options)
    run_dir = make_run_dir(options.out, scenario)
    fleet = None
    environment_label = "cluster"
    if options.targets:
        targets = load_targets(options.targets)
        # A target file may also list local processes: only ingress routing or a cluster mode means a cluster.
        if not any(t.host or t.mode in {"knative", "standard"} for t in targets):
            environment_label = ENVIRONMENT
    elif options.url:
        targets = [Target(model=options.model, url=options.url, pool="local", arch=machine_arch())]
        environment_label = ENVIRONMENT
    else:
        pools = (
            [DEFAULT_POOLS[name] for name in options.pools] if options.pools else list(DEFAULT_POOLS.values())
        )
        if getattr(options, "memory_profiles", None):
            pools = [pool.with_memory_profile(size) for pool in pools for size in options.memory_profiles]
        fleet = LocalFleet(_models(options), pools, log_dir=run_dir)
        environment_label = ENVIRONMENT
    prometheus = None
    campaign = None
    try:
        if fleet is not None:
            targets = fleet.start(
                progress=None if options.quiet else lambda line: print(line, file=sys.stderr)
            )
        campaign = Campaign(
            scenario=scenario,
            targets=targets,
            images=images,
            run_dir=run_dir,
            environment_label=environment_label,
            protocol=options.protocol,
            fleet=fleet,
            prometheus_url=options.prometheus_url,
            quiet=options.quiet,
        )
        campaign.settings["seed"] = options.seed
        exporter_port = campaign.exporter.serve()
        campaign.say(f"lab exporter: http://127.0.0.1:{exporter_port}/metrics")
        local = environment_label != "cluster"
        if local and options.prometheus and not options.prometheus_url:
            scrape = [ScrapeTarget(job="drlab", address=f"127.0.0.1:{exporter_port}")]
            for target in targets:
                labels = {k: v for k, v in target.labels().items() if k != "target"}
                scrape.append(
                    ScrapeTarget(job="predictor", address=target.base_url.split("://", 1)[1], labels=labels)
                )
            prometheus = LocalPrometheus(scrape, log_path=run_dir / "prometheus.log")
            try:
                prometheus.start()
                prometheus.wait_for_scrape(after=0.0)
                campaign.prometheus = prometheus
                campaign.say(f"prometheus: {prometheus.url} scraping {len(scrape)} targets every 1 s")
            except PrometheusError as exc:
                campaign.say(f"[yellow]Prometheus unavailable, continuing without it: {exc}")
                prometheus.stop()
                prometheus = None
        module = importlib.import_module(SCENARIOS[scenario])
        module.run(campaign, options)
        campaign.finish()
    finally:
        if prometheus is not None:
            prometheus.stop()
        if campaign is not None:
            campaign.exporter.stop()
            campaign.recorder.close()
        if fleet is not None:
            fleet.stop()
    if options.report:
        from loadtest.report import write_report

        write_report(run_dir, print_table=getattr(options, "print_report", not options.quiet))
    return run_dir


def main(argv: list[str] | None = None) -> int:
    """Run the campaign given as one JSON argument; writes the run folder's path to ``result_file``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("Error: expected one argument, the campaign options as JSON.", file=sys.stderr)
        return 2
    options = argparse.Namespace(**json.loads(argv[0]))
    try:
        run_dir = run_campaign(options)
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError, TimeoutError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    if options.result_file:
        Path(options.result_file).write_text(str(run_dir), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
