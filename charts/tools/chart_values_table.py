"""Generate the Configuration table of charts/dr-serving/README.md from the comments in values.yaml.

Each documented key has a comment line ``# <dotted.path> -- <description>`` above it; the comment lines
that follow, up to the key, continue the description, and ``# ref: <url>`` lines become links. The table
sits between the markers ``<!-- values-table:start -->`` and ``<!-- values-table:end -->`` in the README.

    python charts/tools/chart_values_table.py           # rewrite the table in the README
    python charts/tools/chart_values_table.py --check   # exit 1 when the README table is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "dr-serving"
START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"
_HEADER = re.compile(r"^\s*#\s*(?P<path>[A-Za-z0-9_.]+) -- (?P<text>.+)$")
_REF = re.compile(r"^\s*#\s*ref:\s*(?P<url>\S+)\s*$")
_KEY = re.compile(r"^\s*(?P<key>[A-Za-z0-9_.-]+):(\s|$)")
_MAX_DEFAULT = 60


@dataclass
class ValueDoc:
    """One documented key: its dotted path, description and reference links."""

    path: str
    description: str
    refs: list[str] = field(default_factory=list)


def parse_docs(text: str) -> list[ValueDoc]:
    """Return the documented keys of a values.yaml text, in file order."""
    docs: list[ValueDoc] = []
    current: ValueDoc | None = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            current = ValueDoc(header["path"], header["text"].strip())
            docs.append(current)
            continue
        ref = _REF.match(line)
        if current is not None and ref:
            current.refs.append(ref["url"])
        elif current is not None and line.strip().startswith("#"):
            current.description += " " + line.strip().lstrip("#").strip()
        elif _KEY.match(line):
            current = None
    return docs


def lookup(values: Any, path: str) -> Any:
    """Return the value at a dotted path of the parsed values."""
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"values.yaml documents {path!r}, which is not a key of the file.")
        node = node[part]
    return node


def leaf_paths(values: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf value (scalars, lists and empty maps)."""
    if isinstance(values, dict) and values:
        return [p for key, sub in values.items() for p in leaf_paths(sub, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


def _default(value: Any) -> str:
    shown = json.dumps(value, separators=(", ", ": "))
    if isinstance(value, dict) and len(shown) > _MAX_DEFAULT:
        return "see the keys below"
    return f"`{shown}`"


def render_table(values_text: str) -> str:
    """Render the Markdown table for a values.yaml text."""
    values = yaml.safe_load(values_text)
    rows = ["| Key | Default | Description |", "| --- | --- | --- |"]
    for doc in parse_docs(values_text):
        description = doc.description.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        links = " ".join(f"[ref]({url})" for url in doc.refs)
        cells = f"| `{doc.path}` | {_default(lookup(values, doc.path))} | {description} {links}".rstrip()
        rows.append(cells + " |")
    return "\n".join(rows) + "\n"


def undocumented(values_text: str) -> list[str]:
    """Leaf paths of values.yaml with no documented key at or above them."""
    documented = {doc.path for doc in parse_docs(values_text)}
    missing = []
    for path in leaf_paths(yaml.safe_load(values_text)):
        parts = path.split(".")
        if not any(".".join(parts[:n]) in documented for n in range(len(parts), 0, -1)):
            missing.append(path)
    return missing


def update_readme(readme_text: str, table: str) -> str:
    """Return the README text with the table between the markers replaced."""
    if START not in readme_text or END not in readme_text:
        raise ValueError(f"Expected the markers {START} and {END} in the chart README.")
    head, rest = readme_text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the README table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=CHART, help="chart folder (values.yaml, README.md)")
    parser.add_argument("--check", action="store_true", help="fail when the README table is stale")
    args = parser.parse_args(argv)
    values_text = (args.chart / "values.yaml").read_text()
    missing = undocumented(values_text)
    if missing:
        names = ", ".join(missing)
        print(f"Error: values.yaml keys without a '# <key> -- ...' comment: {names}", file=sys.stderr)
        return 1
    readme = args.chart / "README.md"
    updated = update_readme(readme.read_text(), render_table(values_text))
    if args.check:
        if readme.read_text() != updated:
            hint = "run: python charts/tools/chart_values_table.py"
            print(f"Error: {readme} is stale; {hint}", file=sys.stderr)
            return 1
        print(f"{readme} is up to date")
        return 0
    readme.write_text(updated)
    print(f"wrote the values table into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
