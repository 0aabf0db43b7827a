"""InferenceService template: placement per pool, mode semantics, security, profiles, env and naming."""

from __future__ import annotations

import pytest
from chartkit import CHART, by_kind, container, env, isvcs, predictor_pod, render, run_helm, validate_builtin

GRAVITON_TOLERATION = {
    "key": "dr-serving/pool",
    "operator": "Equal",
    "value": "graviton",
    "effect": "NoSchedule",
}


def _predictor(name: str, *values: str | dict) -> dict:
    return isvcs(render(*values))[name]["spec"]["predictor"]


def test_default_renders_mobilenet_on_both_pools() -> None:
    """Defaults: one model (mobilenet) on the amd64 and graviton pools."""
    assert sorted(isvcs(render())) == ["dr-serving-mobilenet-amd64", "dr-serving-mobilenet-graviton"]


@pytest.mark.parametrize(
    ("pool", "arch", "tolerations"),
    [("amd64", "amd64", None), ("graviton", "arm64", [GRAVITON_TOLERATION])],
    ids=["amd64-pool", "graviton-pool"],
)
def test_pool_selects_arch_and_tolerates_its_taint(pool: str, arch: str, tolerations: list | None) -> None:
    """Real clusters: each pool selects kubernetes.io/arch; only the Graviton pool tolerates its taint."""
    predictor = _predictor(f"dr-serving-mobilenet-{pool}")
    assert predictor["nodeSelector"] == {"kubernetes.io/arch": arch}
    assert predictor.get("tolerations") == tolerations


def test_kind_values_select_by_pool_label_instead_of_arch() -> None:
    """On kind every node has the host's arch, so ci/kind-values.yaml selects by the dr-serving/pool label."""
    predictor = _predictor("dr-serving-mobilenet-graviton", "kind-values.yaml")
    assert predictor["nodeSelector"] == {"dr-serving/pool": "graviton"}
    assert predictor["tolerations"] == [GRAVITON_TOLERATION]
    assert (
        container({"spec": {"predictor": predictor}})["image"] == "kind.local/dr-serving/predictor:0.1.0-lite"
    )


def test_instance_type_selector_and_extra_node_labels_are_added() -> None:
    """placement.instanceTypeSelector and a pool's nodeSelector add to the arch selector."""
    predictor = _predictor(
        "dr-serving-mobilenet-amd64",
        {
            "placement": {"instanceTypeSelector": True},
            "pools": {"amd64": {"nodeSelector": {"team": "retina"}}},
        },
    )
    assert predictor["nodeSelector"] == {
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "m5.xlarge",
        "team": "retina",
    }


def test_knative_mode_allows_zero_and_sets_revision_annotations() -> None:
    """Knative mode: minReplicas 0, window/retention/initial-scale annotations, never min/max-scale."""
    isvc = isvcs(render({"knative": {"window": "20s", "initialScale": 2}}))["dr-serving-mobilenet-amd64"]
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Knative"
    assert annotations["autoscaling.knative.dev/window"] == "20s"
    assert annotations["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "0s"
    assert annotations["autoscaling.knative.dev/initial-scale"] == "2"
    assert not [
        key for key in annotations if key.endswith(("min-scale", "max-scale", "minScale", "maxScale"))
    ]
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 3)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 4)
    assert "terminationGracePeriodSeconds" not in predictor  # Knative rejects it in the pod spec


def test_standard_mode_keeps_pods_and_uses_hpa() -> None:
    """Standard mode: minReplicas >= 1, HPA settings, no Knative annotations."""
    isvc = isvcs(render("standard-values.yaml"))["dr-serving-mobilenet-graviton"]
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Standard"
    assert annotations["serving.kserve.io/autoscalerClass"] == "hpa"
    assert not [key for key in annotations if key.startswith("autoscaling.knative.dev/")]
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] >= 1
    assert (predictor["scaleMetric"], predictor["scaleTarget"], predictor["maxReplicas"]) == ("cpu", 60, 2)


def test_container_runs_the_predictor_per_contract() -> None:
    """kserve-container: contract args, port 8080, probes on the model route, concurrency and timeout."""
    predictor = _predictor(
        "dr-serving-mobilenet-amd64", {"predictor": {"containerConcurrency": 2, "timeout": 45}}
    )
    main = predictor["containers"][0]
    assert main["name"] == "kserve-container"
    assert main["args"] == [
        "serve",
        "--model-dir=/opt/dr-serving/model",
        "--model-name=mobilenet",
        "--http-port=8080",
        "--backend=litert",
    ]
    assert main["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/v1/models/mobilenet", "port": 8080}
    assert (predictor["containerConcurrency"], predictor["timeout"]) == (2, 45)


@pytest.mark.parametrize(
    ("values", "image", "backend"),
    [
        ({}, "dr-serving/predictor:0.1.0-lite", "litert"),
        ("lite-values.yaml", "dr-serving/predictor:0.1.0-lite", "litert"),
        ({"image": {"flavour": "full"}}, "dr-serving/predictor:0.1.0-full", "savedmodel"),
        ({"models": {"mobilenet": {"flavour": "full"}}}, "dr-serving/predictor:0.1.0-full", "savedmodel"),
        (
            {"image": {"digest": "sha256:" + "ab" * 32, "tag": "ignored"}},
            "dr-serving/predictor@sha256:" + "ab" * 32,
            "litert",
        ),
        (
            {"image": {"tag": "dev"}, "models": {"mobilenet": {"backend": "litert"}}},
            "dr-serving/predictor:dev",
            "litert",
        ),
    ],
    ids=[
        "lite-default",
        "lite-flavour",
        "full-flavour",
        "per-model-flavour",
        "digest",
        "tag-and-backend-override",
    ],
)
def test_flavour_picks_image_tag_and_backend(values: str | dict, image: str, backend: str) -> None:
    """The flavour (lite by default) sets the tag and the backend; a digest pins the image instead."""
    main = container(isvcs(render(values))["dr-serving-mobilenet-amd64"])
    assert main["image"] == image
    assert f"--backend={backend}" in main["args"]


def test_restricted_security_context() -> None:
    """Restricted PSS: uid/gid 10001, no token, no escalation, ALL dropped, RuntimeDefault, read-only root."""
    predictor = _predictor("dr-serving-mobilenet-graviton")
    assert predictor["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert predictor["automountServiceAccountToken"] is False
    main = predictor["containers"][0]
    security = main["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (10001, 10001)
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert predictor["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]


def test_env_carries_pool_facts_and_downward_api() -> None:
    """Env per contract: pool, arch, instance type, price, mode, profile, precision, node and pod names."""
    variables = env(isvcs(render("profiles-values.yaml", {"mode": "standard"}))["dr-serving-vgg19-graviton"])
    assert variables["DR_POOL"] == "graviton"
    assert variables["DR_ARCH"] == "arm64"
    assert variables["DR_INSTANCE_TYPE"] == "c7g.xlarge"
    assert variables["DR_PRICE_PER_HOUR"] == "0.174"
    assert variables["DR_MODE"] == "standard"
    assert variables["DR_MEMORY_PROFILE"] == "3Gi"
    assert variables["DR_PRECISION"] == "fp32"
    assert variables["DR_BODY_TIMEOUT_SECONDS"] == "30"
    assert variables["DR_GRADABILITY"] == "reject"
    assert variables["DR_REQUEST_LOG"] == "on"
    assert variables["DR_NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert variables["DR_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert variables["STORAGE_URI"] == "pvc://dr-models/vgg19"
    assert "DR_MAX_BATCH" not in variables


def test_limits_and_extra_env_are_exported() -> None:
    """predictor.limits become DR_MAX_* variables; extraEnv is appended."""
    values = {
        "predictor": {
            "limits": {
                "maxImageBytes": 5000000,
                "maxImagePixels": 0,
                "maxBatch": 8,
                "decodeSlots": 1,
                "maxDecodedBytes": 67108864,
            },
            "extraEnv": [{"name": "OPENBLAS_CORETYPE", "value": "SkylakeX"}],
        }
    }
    variables = env(isvcs(render(values))["dr-serving-mobilenet-amd64"])
    assert variables["DR_MAX_IMAGE_BYTES"] == "5000000"
    assert variables["DR_MAX_BATCH"] == "8"
    assert "DR_MAX_IMAGE_PIXELS" not in variables
    assert variables["DR_DECODE_SLOTS"] == "1"
    assert variables["DR_MAX_DECODED_BYTES"] == "67108864"
    assert variables["OPENBLAS_CORETYPE"] == "SkylakeX"


@pytest.mark.parametrize(
    ("concurrency", "inflight"), [(4, "4"), (16, "16"), (0, None)], ids=["default", "16", "unlimited"]
)
def test_container_concurrency_bounds_the_predictors_in_flight_requests(
    concurrency: int, inflight: str | None
) -> None:
    """containerConcurrency is exported as DR_MAX_INFLIGHT: the predictor itself answers 503 past it."""
    for mode in ("knative", "standard"):
        values = {"mode": mode, "predictor": {"containerConcurrency": concurrency}}
        variables = env(isvcs(render(values))["dr-serving-mobilenet-amd64"])
        assert variables.get("DR_MAX_INFLIGHT") == inflight


def test_profiles_are_overridable_and_per_model() -> None:
    """A custom profile becomes the default; a model may pick another and run on a subset of pools."""
    services = isvcs(render("profiles-values.yaml"))
    assert sorted(services) == [
        "dr-serving-mobilenet-amd64",
        "dr-serving-mobilenet-graviton",
        "dr-serving-vgg19-graviton",
    ]
    assert container(services["dr-serving-mobilenet-amd64"])["resources"]["limits"] == {
        "cpu": "2",
        "memory": "4Gi",
    }
    assert container(services["dr-serving-vgg19-graviton"])["resources"]["requests"] == {
        "cpu": "1500m",
        "memory": "3Gi",
    }


def test_pod_labels_identify_model_pool_and_release() -> None:
    """Pod labels carry the selector labels plus model, pool, arch and mode (PodMonitor, cluster tooling)."""
    predictor = _predictor("dr-serving-mobilenet-graviton", {"podLabels": {"team": "retina"}})
    assert predictor["labels"] == {
        "app.kubernetes.io/name": "dr-serving",
        "app.kubernetes.io/instance": "dr-serving",
        "app.kubernetes.io/component": "predictor",
        "dr-serving/model": "mobilenet",
        "dr-serving/pool": "graviton",
        "dr-serving/arch": "arm64",
        "dr-serving/mode": "knative",
        "team": "retina",
    }


def test_predictor_is_a_valid_pod_in_both_modes() -> None:
    """The predictor's pod spec validates strictly as a core Pod (Kubernetes 1.32) in each mode."""
    for values in ({}, "standard-values.yaml"):
        for isvc in isvcs(render(values)).values():
            validate_builtin(predictor_pod(isvc))


def test_standard_mode_drains_and_knative_leaves_it_to_the_queue_proxy() -> None:
    """Standard pods get DR_DRAIN_SECONDS (drain after SIGTERM); Knative leaves it to its queue-proxy."""
    standard = env(
        isvcs(render({"mode": "standard", "predictor": {"drainSeconds": 7}}))["dr-serving-mobilenet-amd64"]
    )
    assert standard["DR_DRAIN_SECONDS"] == "7"
    knative = env(isvcs(render({"mode": "knative"}))["dr-serving-mobilenet-amd64"])
    assert "DR_DRAIN_SECONDS" not in knative


def test_knative_mode_leaves_out_the_downward_api_unless_the_cluster_allows_it() -> None:
    """Finding 1: Knative refuses valueFrom.fieldRef without kubernetes.podspec-fieldref: opt-in there."""
    knative = env(isvcs(render())["dr-serving-mobilenet-amd64"])
    assert not {"DR_NODE_NAME", "DR_POD_NAME"} & set(knative)
    opted_in = env(isvcs(render({"knative": {"fieldRefEnv": True}}))["dr-serving-mobilenet-amd64"])
    assert opted_in["DR_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_knative_window_follows_the_cluster_unless_set() -> None:
    """Finding 5: no per-revision window by default, so config-autoscaler's stable-window applies."""
    annotations = isvcs(render())["dr-serving-mobilenet-amd64"]["metadata"]["annotations"]
    assert "autoscaling.knative.dev/window" not in annotations


@pytest.mark.parametrize(("precision", "flavour"), [("fp32", "lite"), ("int8", "lite"), ("bf16", "full")])
def test_precision_becomes_dr_precision(precision: str, flavour: str) -> None:
    """models.<name>.precision is exported as DR_PRECISION (the predictor's --precision)."""
    values = {"image": {"flavour": flavour}, "models": {"mobilenet": {"precision": precision}}}
    assert env(isvcs(render(values))["dr-serving-mobilenet-amd64"])["DR_PRECISION"] == precision


def test_micro_batching_is_off_unless_a_model_asks_for_it() -> None:
    """models.<name>.microBatch > 1 exports DR_MICRO_BATCH and its wait; 0 (the default) exports neither."""
    default = env(isvcs(render())["dr-serving-mobilenet-amd64"])
    assert "DR_MICRO_BATCH" not in default and "DR_MICRO_BATCH_WAIT_MS" not in default
    batching = {"microBatch": 8, "microBatchWaitMs": 2.5}
    values = {"image": {"flavour": "full"}, "models": {"mobilenet": batching}}
    variables = env(isvcs(render(values))["dr-serving-mobilenet-amd64"])
    assert (variables["DR_MICRO_BATCH"], variables["DR_MICRO_BATCH_WAIT_MS"]) == ("8", "2.5")


def test_a_negative_micro_batch_is_refused_by_the_schema() -> None:
    """values.schema.json bounds microBatch to 0-256 images."""
    result = run_helm("template", "x", str(CHART), "--set", "models.mobilenet.microBatch=-1", check=False)
    assert result.returncode != 0
    assert "microBatch" in result.stderr and "minimum" in result.stderr


def test_threads_follow_the_cpu_limit_unless_a_model_sets_them() -> None:
    """models.<name>.threads > 0 exports DR_THREADS (the predictor's --threads); 0 (the default) does not."""
    assert "DR_THREADS" not in env(isvcs(render())["dr-serving-mobilenet-amd64"])
    values = {"image": {"flavour": "full"}, "models": {"mobilenet": {"threads": 1}}}
    assert env(isvcs(render(values))["dr-serving-mobilenet-amd64"])["DR_THREADS"] == "1"
    result = run_helm("template", "x", str(CHART), "--set", "models.mobilenet.threads=-1", check=False)
    assert result.returncode != 0
    assert "threads" in result.stderr and "minimum" in result.stderr


@pytest.mark.parametrize("policy", ["reject", "flag", "off"])
def test_gradability_policy_becomes_dr_gradability(policy: str) -> None:
    """predictor.gradability is exported as DR_GRADABILITY on every predictor (the gate's policy)."""
    for isvc in isvcs(render({"predictor": {"gradability": policy}})).values():
        assert env(isvc)["DR_GRADABILITY"] == policy


@pytest.mark.parametrize(("logged", "variable"), [(True, "on"), (False, "off")])
def test_request_log_becomes_dr_request_log(logged: bool, variable: str) -> None:
    """predictor.requestLog is exported as DR_REQUEST_LOG on every predictor; a string is refused."""
    for isvc in isvcs(render({"predictor": {"requestLog": logged}})).values():
        assert env(isvc)["DR_REQUEST_LOG"] == variable
    result = run_helm("template", "x", str(CHART), "--set-string", "predictor.requestLog=off", check=False)
    assert result.returncode != 0 and "requestLog" in result.stderr


def test_int8_with_the_savedmodel_backend_is_refused() -> None:
    """int8 weights exist only as a .tflite: the full flavour (SavedModel) cannot serve them."""
    result = run_helm(
        "template",
        "x",
        str(CHART),
        "--set",
        "image.flavour=full",
        "--set",
        "models.mobilenet.precision=int8",
        check=False,
    )
    assert result.returncode != 0
    assert "models.mobilenet.precision int8 needs the litert backend" in result.stderr


def test_bf16_with_the_litert_backend_is_refused() -> None:
    """bf16 is oneDNN math inside TensorFlow: the lite flavour (LiteRT) cannot serve it."""
    result = run_helm("template", "x", str(CHART), "--set", "models.mobilenet.precision=bf16", check=False)
    assert result.returncode != 0
    assert "models.mobilenet.precision bf16 needs the savedmodel backend" in result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["--set", "mode=standard", "--set", "predictor.terminationGracePeriodSeconds=40"],
            "must exceed drainSeconds (5) + bodyTimeoutSeconds (30) + 5 s margin = 40",
        ),
        (["--set", "predictor.timeout=35"], "must exceed bodyTimeoutSeconds (30) + 5 s margin = 35"),
    ],
    ids=["standard-grace-period", "knative-revision-timeout"],
)
def test_grace_period_must_outlast_drain_and_a_slow_upload(values: list[str], message: str) -> None:
    """A stopping pod must outlive drain + body timeout + margin; checked at render time in both modes."""
    result = run_helm("template", "x", str(CHART), *values, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_knative_readiness_is_probed_aggressively_and_standard_every_second() -> None:
    """Cold start: Knative mode leaves periodSeconds 0 (queue-proxy probes every 50 ms; no failureThreshold or
    timeoutSeconds, Knative refuses them then); Standard mode probes from 0 s every 1 s (kubelet's least)."""
    for isvc in by_kind(render(), "InferenceService"):
        (main,) = isvc["spec"]["predictor"]["containers"]
        probe = main["readinessProbe"]
        assert probe.get("periodSeconds", 0) == 0
        assert not {"failureThreshold", "timeoutSeconds", "initialDelaySeconds"} & set(probe)
    for isvc in by_kind(render("standard-values.yaml"), "InferenceService"):
        (main,) = isvc["spec"]["predictor"]["containers"]
        probe = main["readinessProbe"]
        assert (probe["initialDelaySeconds"], probe["periodSeconds"], probe["failureThreshold"]) == (0, 1, 3)
    (isvc, *_) = by_kind(render({"knative": {"aggressiveReadiness": False}}), "InferenceService")
    assert isvc["spec"]["predictor"]["containers"][0]["readinessProbe"]["periodSeconds"] == 1
