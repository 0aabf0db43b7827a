"""Generated files stay current: the README values table and the compact CRD schemas."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from chartkit import CHART, CRD_SCHEMAS, ROOT

SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "charts" / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


values_table = _script("chart_values_table")
compact_crds = _script("compact_crd_schemas")


def test_readme_values_table_is_current() -> None:
    """charts/dr-serving/README.md holds the table generated from values.yaml (make chart-docs)."""
    readme = (CHART / "README.md").read_text()
    table = values_table.render_table((CHART / "values.yaml").read_text())
    assert values_table.update_readme(readme, table) == readme


def test_every_value_is_documented() -> None:
    """Every leaf of values.yaml has a '# <key> -- ...' comment at or above it."""
    assert values_table.undocumented((CHART / "values.yaml").read_text()) == []


def test_table_parses_descriptions_refs_and_skips_examples() -> None:
    """Continuation lines join the description, ref: lines become links, examples after a key are ignored."""
    text = (
        "# replicas -- How many pods\n# to run.\n# ref: https://example.org/replicas\nreplicas: 2\n"
        "# - commented example\n# extra -- Extra labels.\nextra: {}\n  # team: retina\nplain: 1\n"
    )
    table = values_table.render_table(text)
    assert "| `replicas` | `2` | How many pods to run. [ref](https://example.org/replicas) |" in table
    assert "| `extra` | `{}` | Extra labels. |" in table
    assert values_table.undocumented(text) == ["plain"]


def test_table_rejects_a_comment_for_a_missing_key() -> None:
    """A documented path that is not in the file is an error naming it."""
    with pytest.raises(KeyError, match="documents 'gone'"):
        values_table.render_table("# gone -- Not here.\nother: 1\n")


def test_compact_schema_keeps_names_types_enums_and_required_only() -> None:
    """compact() drops descriptions and defaults and keeps the structure."""
    schema = {
        "description": "x",
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"type": "string", "enum": ["x"], "default": "x", "description": "a"}},
        "x-kubernetes-validations": [{"rule": "self.a != ''"}],
    }
    assert compact_crds.compact(schema) == {
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"type": "string", "enum": ["x"]}},
    }


def test_committed_compact_schemas_cover_the_rendered_kinds() -> None:
    """The committed file holds the three rendered CRD kinds and no descriptions."""
    text = CRD_SCHEMAS.read_text()
    schemas = json.loads(text)["schemas"]
    assert set(schemas) >= {
        "serving.kserve.io/v1beta1/InferenceService",
        "monitoring.coreos.com/v1/PodMonitor",
        "monitoring.coreos.com/v1/ServiceMonitor",
    }
    assert '"description"' not in text


@pytest.mark.skipif(not SHARED_SCHEMAS.is_dir(), reason="../shared/schemas is absent (committed copy used)")
def test_committed_compact_schemas_match_shared_upstream_crds() -> None:
    """tests/chart/schemas/crds.json equals what compact_crd_schemas.py derives from ../shared/schemas."""
    expected = compact_crds.render(compact_crds.build(SHARED_SCHEMAS))
    assert Path(CRD_SCHEMAS).read_text() == expected, "stale: run python charts/tools/compact_crd_schemas.py"
