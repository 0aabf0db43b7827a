from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.targets import Target, load_targets, parse_targets


def test_yaml_file_with_aliases_and_extras(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(
        "targets:\n"
        "  - {model: mobilenet, url: 'http://127.0.0.1:8080/', pool: graviton, mode: knative, arch: arm64,\n"
        "     instanceType: c7g.xlarge, host_header: mobilenet-graviton.default.example.com,\n"
        "     namespace: lab}\n"
        "  - {name: vgg19, endpoint: 'http://127.0.0.1:8081', pricePerHour: '0.23'}\n"
    )
    first, second = load_targets(path)
    assert first.name == "mobilenet@graviton/knative"
    assert first.instance_type == "c7g.xlarge"
    assert first.host == "mobilenet-graviton.default.example.com"
    assert first.base_url == "http://127.0.0.1:8080"
    assert first.extra == {"namespace": "lab"}
    assert second.model == "vgg19" and second.url == "http://127.0.0.1:8081"
    assert second.price_per_hour == pytest.approx(0.23)
    assert second.labels() == {
        "target": "vgg19@local/local",
        "model": "vgg19",
        "pool": "local",
        "arch": "unknown",
        "instance_type": "unknown",
        "mode": "local",
    }


def test_json_list_and_endpoints_key(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"endpoints": [{"model": "m", "url": "http://127.0.0.1:1"}]}))
    assert [t.name for t in load_targets(path)] == ["m@local/local"]
    assert parse_targets([{"model": "m", "url": "http://127.0.0.1:1", "memory_profile": "2Gi"}])[0].name == (
        "m@local+2Gi/local"
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"nothing": []}, "'targets' or 'endpoints'"),
        ([], "lists no targets"),
        ([{"model": "m"}], "lacks url"),
        ([{"model": "m", "url": "ftp://x"}], "absolute http(s) URL"),
        ([{"model": "m", "url": "http://127.0.0.1:1"}] * 2, "unique"),
        ("text", "list or a mapping"),
    ],
    ids=["no-list", "empty", "missing-url", "bad-scheme", "duplicates", "scalar"],
)
def test_bad_documents_raise_one_sentence(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_targets(document)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Cannot read the target file"):
        load_targets(tmp_path / "absent.yaml")


def test_round_trip_through_dict() -> None:
    target = Target(model="m", url="http://127.0.0.1:9", pool="p", memory_profile="1Gi")
    assert Target.from_dict(target.to_dict()) == target
    assert "m@p+1Gi/local" in repr(target)


def test_round_trip_keeps_extra_keys() -> None:
    target = Target(model="m", url="http://127.0.0.1:9", extra={"namespace": "lab"})
    back = Target.from_dict(target.to_dict())
    assert back == target and back.extra == {"namespace": "lab"}
