"""The child process that runs one campaign: ``python -m loadtest.run SPEC_JSON [RESULT_FILE]``.

gevent's monkey-patching must come before any other import (Locust needs it, and patching a process that has
already imported TensorFlow, asyncio or kserve is unsafe), so ``dr-serving lab run`` parses and checks the
spec (``loadtest.spec.CampaignSpec``) in its own process, then starts this module in a fresh interpreter.
Prints one ``Error: ...`` line and exits 1 on a runtime failure.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import importlib  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

from loadtest.scenarios.options import UsageError  # noqa: E402
from loadtest.spec import CampaignSpec, LocalTargets, TargetFile, UrlTarget  # noqa: E402

__all__ = ["interrupt_main_greenlet_on", "main", "run_campaign"]


def run_campaign(spec: CampaignSpec) -> Path:
    """Run the campaign ``spec`` describes and write its run folder (and report); returns the folder."""
    from loadtest.campaign import Campaign, make_run_dir
    from loadtest.emulation import ALL_POOLS, ENVIRONMENT, LocalFleet, default_pool_names, machine_arch
    from loadtest.images import ImageSource
    from loadtest.prometheus_local import LocalPrometheus, PrometheusError, ScrapeTarget
    from loadtest.scenarios import SCENARIOS
    from loadtest.targets import Target, load_targets

    scenario = spec.scenario_name
    module = importlib.import_module(SCENARIOS[scenario])
    module.check(spec.scenario, seed=spec.seed)
    if spec.images.folder is not None:
        images = ImageSource.folder(spec.images.folder)
    else:
        images = ImageSource.synthetic(count=spec.images.count, size=spec.images.size, seed=spec.seed)
    run_dir = make_run_dir(spec.out, scenario)
    fleet = None
    environment_label = "cluster"
    match spec.targets:
        case TargetFile(path=path):
            targets = load_targets(path)
            # A target file may also list local processes: only ingress routing or a cluster mode means a
            # cluster.
            if not any(t.host or t.mode in {"knative", "standard"} for t in targets):
                environment_label = ENVIRONMENT
        case UrlTarget(url=url, model=model):
            targets = [Target(model=model, url=url, pool="local", arch=machine_arch())]
            environment_label = ENVIRONMENT
        case LocalTargets(models=models, pools=names, memory_profiles=profiles) as local:
            pools = [ALL_POOLS[name] for name in names or default_pool_names()]
            if profiles:
                pools = [pool.with_memory_profile(size) for pool in pools for size in profiles]
            if local.runtime == "docker":
                from loadtest.containers import ContainerFleet

                fleet = ContainerFleet(
                    dict(models),
                    pools,
                    image_suffix=local.image_suffix,
                    flavour=local.flavour,
                    log_dir=run_dir,
                    pull_mb_per_s=local.pull_mb_per_s,
                    precision=local.precision,
                    threads=local.threads,
                    run_id=local.run_id,
                )
                environment_label = ENVIRONMENT.removesuffix(")") + ", docker containers)"
            else:
                fleet = LocalFleet(dict(models), pools, log_dir=run_dir, extra_args=local.serve_args())
                environment_label = ENVIRONMENT
    prometheus = None
    campaign = None
    try:
        if fleet is not None:
            targets = fleet.start(progress=None if spec.quiet else lambda line: print(line, file=sys.stderr))
        campaign = Campaign(
            scenario=scenario,
            targets=targets,
            images=images,
            run_dir=run_dir,
            environment_label=environment_label,
            protocol=spec.protocol,
            seed=spec.seed,
            fleet=fleet,
            prometheus_url=spec.prometheus.url,
            quiet=spec.quiet,
            workers=spec.workers,
            generator_spec=spec.generator,
            image_spec={
                "folder": str(spec.images.folder) if spec.images.folder is not None else None,
                "count": spec.images.count,
                "size": spec.images.size,
                "seed": spec.seed,
            },
        )
        campaign.settings["seed"] = spec.seed
        if fleet is not None:
            campaign.settings["runtime"] = fleet.runtime
        if isinstance(spec.targets, LocalTargets):
            campaign.settings["backend"] = spec.targets.backend
            campaign.settings["precision"] = spec.targets.precision
            campaign.settings["threads"] = spec.targets.threads or "auto"
        exporter_port = campaign.exporter.serve()
        campaign.say(f"lab exporter: http://127.0.0.1:{exporter_port}/metrics")
        local = environment_label != "cluster"
        if local and spec.prometheus.start and not spec.prometheus.url:
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
        module.run(campaign, spec.scenario)
        campaign.finish()
    finally:
        if prometheus is not None:
            prometheus.stop()
        if campaign is not None:
            campaign.exporter.stop()
            campaign.recorder.close()
        if fleet is not None:
            fleet.stop()
    if spec.report.write:
        from loadtest.report import write_report

        write_report(run_dir, print_table=spec.report.print)
    return run_dir


def interrupt_main_greenlet_on(*signals: int) -> None:
    """On each of ``signals``, raise ``KeyboardInterrupt`` in the calling (main) greenlet, which cleans up.

    Python's own handler raises it in whichever greenlet the signal interrupts; when that is a thread of ours
    (patched into a greenlet, e.g. the container stats sampler), the thread swallows it and dies, and the
    campaign goes on until its launcher gives up and kills it. gevent's handler runs in a greenlet of its own
    and throws into the main one.
    """
    main = gevent.getcurrent()
    for signum in signals:
        gevent.signal_handler(signum, main.throw, KeyboardInterrupt)


def main(argv: list[str] | None = None) -> int:
    """Run ``SPEC_JSON [RESULT_FILE]``: the campaign, then write the run folder's path to ``RESULT_FILE``."""
    argv = sys.argv[1:] if argv is None else argv
    # Ctrl-C and SIGTERM end the campaign in the main greenlet: the ``finally`` blocks stop predictors and
    # remove containers.
    interrupt_main_greenlet_on(signal.SIGINT, signal.SIGTERM)
    if len(argv) not in (1, 2):
        print("Error: expected SPEC_JSON [RESULT_FILE], the campaign spec as JSON.", file=sys.stderr)
        return 2
    try:
        spec = CampaignSpec.from_json(argv[0])
        run_dir = run_campaign(spec)
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError, TimeoutError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    if len(argv) == 2:
        Path(argv[1]).write_text(str(run_dir), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
