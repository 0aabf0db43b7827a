"""Render the report: Markdown (plots linked), self-contained HTML (plots as base64) and rich tables."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
from rich.console import Console
from rich.table import Table as RichTable

from loadtest.report.run import RunData
from loadtest.report.tables import Table
from loadtest.summary import GroupStats

__all__ = ["generator_text", "header_items", "make_console", "print_tables", "render_html", "render_markdown"]

_CAPTIONS = {
    "latency_boxplot": "Prediction time and total latency per pool and model (warm requests)",
    "prediction_vs_total": "Median prediction time vs median total latency (whiskers: p95)",
    "warm_vs_cold": "Warm vs cold requests",
    "load_steps": "Latency and throughput by number of users",
    "anatomy": "Latency anatomy: mean time per part of a request, per target and phase/load",
    "timeline": "Every request over time",
    "container_memory": "Container memory: peak and steady vs the --memory limit (docker runtime)",
    "cold_breakdown": "Container cold starts split into their parts, beside the published cold full latency",
}


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def header_items(run: RunData) -> list[tuple[str, str]]:
    """The report's header as (label, text) pairs, built once from the summary for every renderer."""
    s = run.summary
    return [
        ("environment", s.environment),
        (
            "scenario",
            f"{s.scenario} · protocol {s.protocol} · {s.requests} requests · {s.duration_s} s · "
            f"started {s.started}",
        ),
        ("images", s.images),
        ("settings", str({k: v for k, v in s.settings.items() if k != "generator"})),
        ("targets", ", ".join(f"{t.model}@{t.pool}" for t in s.targets)),
        *([("served by", served)] if (served := served_by(s.groups)) else []),
        *(
            [("failed targets", failed)]
            if (
                failed := ", ".join(
                    f"{c['target']} ({c['status']} at --memory {c['memory_profile']}, exit {c['exit_code']})"
                    for c in s.containers
                    if c.get("status") in {"oom-killed", "exited"}
                )
            )
            else []
        ),
        ("load generator", generator_text(s.settings.get("generator"))),
    ]


def served_by(groups: Iterable[GroupStats]) -> str:
    """Which backend and precision answered each target (``X-DR-Backend``/``-Precision``), once per target."""
    seen: dict[str, str] = {}
    for group in groups:
        if group.backend and group.target not in seen:
            seen[group.target] = f"{group.target}: {group.backend} {group.precision}".rstrip()
    return ", ".join(seen.values())


def generator_text(generator: dict[str, Any] | None) -> str:
    """Where the load came from and how busy its CPUs were, with a warning when they were saturated."""
    if not generator:
        return "one local process (not recorded: run written before the generator was)"
    workers = generator.get("workers", 0)
    where = {
        "local-process": "one local Locust process",
        "local-workers": f"Locust master + {workers} local worker processes",
        "cluster-workers": f"Locust master + {workers} in-cluster workers",
    }.get(generator.get("kind", ""), str(generator.get("kind")))
    if generator.get("pool"):
        where += f" on node pool {generator['pool']}"
    cpu = ", ".join(f"{name} {value:g} %" for name, value in generator.get("cpu_max_percent", {}).items())
    text = f"{where}; highest CPU: {cpu or 'not measured'}"
    if generator.get("saturated"):
        threshold = generator.get("cpu_threshold_percent", 90)
        text += (
            f" — WARNING: the load generator was saturated (CPU ≥ {threshold} %"
            f"{' and Locust warned' if generator.get('locust_cpu_warning') else ''}): latencies include the "
            "client's own queueing, not only the server's; rerun with more --workers"
        )
    return text


def render_markdown(run: RunData, tables: list[Table], plots: dict[str, Path]) -> str:
    """The Markdown report; plots are linked relative to the run folder."""
    header = [f"- **{label}**: {text}" for label, text in header_items(run)]
    lines = [f"# Load-lab report: {run.summary.scenario} ({run.run_dir.name})", "", *header, ""]
    for table in tables:
        lines += [
            f"## {table.title}",
            "",
            "| " + " | ".join(map(_md_cell, table.header)) + " |",
            "|" + "---|" * len(table.header),
        ]
        lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
        if table.note:
            lines += ["", f"_{table.note}_"]
        lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for name, path in plots.items():
            lines += [f"![{_CAPTIONS.get(name, name)}]({path.relative_to(run.run_dir).as_posix()})", ""]
    return "\n".join(lines)


_HTML = jinja2.Template(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.85em;margin-top:-1em}
.env{background:#fff6d6;padding:.4em .8em;border-left:4px solid #e0b000}
img{max-width:100%;border:1px solid #ddd}
</style></head><body>
<h1>{{ title }}</h1>
<p class="env">environment: {{ environment }}</p>
<ul>{% for item in header %}<li>{{ item }}</li>{% endfor %}</ul>
{% for t in tables %}<h2>{{ t.title }}</h2>
<table><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>
{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}{% endfor %}
{% for p in plots %}<figure><img alt="{{ p.caption }}" src="data:image/png;base64,{{ p.data }}">
<figcaption>{{ p.caption }}</figcaption></figure>{% endfor %}
</body></html>
""",
    autoescape=True,
)


def render_html(run: RunData, tables: list[Table], plots: dict[str, Path]) -> str:
    """The self-contained HTML report: every plot embedded as a base64 PNG."""
    embedded = [
        {"caption": _CAPTIONS.get(name, name), "data": base64.b64encode(path.read_bytes()).decode("ascii")}
        for name, path in plots.items()
    ]
    return _HTML.render(
        title=f"Load-lab report: {run.summary.scenario} ({run.run_dir.name})",
        environment=run.summary.environment,
        header=[f"{label}: {text}" for label, text in header_items(run)],
        tables=tables,
        plots=embedded,
    )


def make_console(**kwargs: object) -> Console:
    """A rich console; off a terminal (logs, pipes) it is wide enough not to wrap table rows."""
    console = Console(**kwargs)
    return console if console.is_terminal else Console(width=160, **kwargs)


def print_tables(tables: list[Table], *, environment: str, console: Console | None = None) -> None:
    """Print the tables in the terminal with rich."""
    console = console or make_console()
    console.print(f"[bold]environment:[/bold] {environment}", highlight=False)
    for table in tables:
        rich_table = RichTable(
            title=table.title, title_justify="left", caption=table.note or None, caption_justify="left"
        )
        for index, name in enumerate(table.header):
            rich_table.add_column(name, justify="left" if index == 0 else "right", overflow="fold")
        for row in table.rows:
            rich_table.add_row(*row)
        console.print(rich_table)
