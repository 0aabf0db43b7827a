"""What KServe and Knative admit, written as rules with the upstream line that makes each one.

Read from the pinned sources (never copied): Knative Serving tag ``knative-v1.21.1`` (``KN`` below) and
KServe tag ``v0.20.0`` (``KS``). ``knative_violations`` walks the pod spec KServe hands to Knative for one
InferenceService (``ksvc_pod_spec``) and returns one line per field Knative's webhook would refuse with the
given feature flags; ``kserve_violations`` does the same for KServe's own InferenceService validation;
``injected_storage_initializer`` builds the init container KServe's pod webhook adds for a ``storageUri``
model, for the Pod Security check.
"""

from __future__ import annotations

import copy
import posixpath
import re
from pathlib import Path
from typing import Any

import yaml
from chartkit import COMPONENT_FIELDS

KN = "knative-v1.21.1"
KS = "kserve v0.20.0"
ROOT = Path(__file__).resolve().parents[2]
CONFIG_FEATURES = ROOT / "manifests" / "knative" / "config-features.yaml"

# Upstream defaults of the flags the rules read (KN pkg/apis/config/features.go:84-113).
DEFAULT_FLAGS: dict[str, str] = {
    "multi-container": "enabled",  # :84
    "kubernetes.podspec-affinity": "disabled",  # :86
    "kubernetes.podspec-topologyspreadconstraints": "disabled",  # :87
    "kubernetes.podspec-hostaliases": "disabled",  # :88
    "kubernetes.podspec-fieldref": "disabled",  # :89
    "kubernetes.podspec-nodeselector": "disabled",  # :90
    "kubernetes.podspec-runtimeclassname": "disabled",  # :91
    "kubernetes.podspec-securitycontext": "disabled",  # :92
    "kubernetes.podspec-shareprocessnamespace": "disabled",  # :93
    "kubernetes.podspec-hostipc": "disabled",  # :94
    "kubernetes.podspec-hostpid": "disabled",  # :95
    "kubernetes.podspec-hostnetwork": "disabled",  # :96
    "kubernetes.podspec-priorityclassname": "disabled",  # :97
    "kubernetes.podspec-schedulername": "disabled",  # :98
    "kubernetes.containerspec-addcapabilities": "disabled",  # :99
    "kubernetes.podspec-tolerations": "disabled",  # :100
    "kubernetes.podspec-volumes-emptydir": "enabled",  # :101
    "kubernetes.podspec-volumes-hostpath": "disabled",  # :102
    "kubernetes.podspec-volumes-csi": "disabled",  # :104
    "kubernetes.podspec-volumes-image": "disabled",  # :105
    "kubernetes.podspec-persistent-volume-claim": "disabled",  # :106
    "kubernetes.podspec-init-containers": "disabled",  # :110
    "kubernetes.podspec-dnspolicy": "disabled",  # :111
    "kubernetes.podspec-dnsconfig": "disabled",  # :112
    "secure-pod-defaults": "disabled",  # :113
}


def project_flags() -> dict[str, str]:
    """Upstream defaults with manifests/knative/config-features.yaml merged on top, as installed."""
    data = yaml.safe_load(CONFIG_FEATURES.read_text())["data"]
    return {**DEFAULT_FLAGS, **{key: str(value).lower() for key, value in data.items()}}


def _on(flags: dict[str, str], name: str) -> bool:
    """A flag counts as on unless "disabled" (KN compares ``!= config.Disabled``; "allowed" passes too)."""
    return flags.get(name, "disabled") != "disabled"


# PodSpec fields Knative keeps: always, or only with a flag (KN pkg/apis/serving/fieldmask.go:227-288).
POD_ALWAYS = {"serviceAccountName", "containers", "volumes", "imagePullSecrets", "enableServiceLinks"}
POD_FLAGGED = {
    "affinity": "kubernetes.podspec-affinity",  # :238-240
    "topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",  # :241-243
    "hostAliases": "kubernetes.podspec-hostaliases",  # :244-246
    "nodeSelector": "kubernetes.podspec-nodeselector",  # :247-249
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",  # :250-252
    "tolerations": "kubernetes.podspec-tolerations",  # :253-255
    "securityContext": "kubernetes.podspec-securitycontext",  # :256-261
    "shareProcessNamespace": "kubernetes.podspec-shareprocessnamespace",  # :262-264
    "priorityClassName": "kubernetes.podspec-priorityclassname",  # :265-267
    "schedulerName": "kubernetes.podspec-schedulername",  # :268-270
    "initContainers": "kubernetes.podspec-init-containers",  # :271-273
    "dnsPolicy": "kubernetes.podspec-dnspolicy",  # :274-276
    "dnsConfig": "kubernetes.podspec-dnsconfig",  # :277-279
    "hostIPC": "kubernetes.podspec-hostipc",  # :280-282
    "hostPID": "kubernetes.podspec-hostpid",  # :283-285
    "hostNetwork": "kubernetes.podspec-hostnetwork",  # :286-288
}
# Container fields Knative keeps (fieldmask.go:314-330); lifecycle, stdin, tty, volumeDevices are refused.
CONTAINER_FIELDS = {
    "name",
    "args",
    "command",
    "env",
    "workingDir",
    "envFrom",
    "image",
    "imagePullPolicy",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "startupProbe",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "volumeMounts",
}
# Pod securityContext fields kept only with podspec-securitycontext (fieldmask.go:683-692).
POD_SECURITY_FIELDS = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "supplementalGroups",
    "seccompProfile",
}
# Container securityContext fields kept (fieldmask.go:715-731; privileged only when false).
CONTAINER_SECURITY_FIELDS = {
    "capabilities",
    "readOnlyRootFilesystem",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "seccompProfile",
}
ENV_FIELDS = {"name", "value", "valueFrom"}  # fieldmask.go:511-513
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}  # k8s_validation.go:54-59, check :344
# Reserved ports (k8s_validation.go:61-67): queue-proxy 8012/8013, admin 8022, metrics 9090/9091
# (pkg/networking/constants.go:24,27,34,38,42), profiling 8008
# (vendor/knative.dev/pkg/observability/runtime/pprof.go:34).
RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
PORT_NAMES = {"", "h2c", "http1"}  # k8s_validation.go:75-79, check :772
PORT_FIELDS = {"containerPort", "name", "protocol"}  # fieldmask.go:488-495 (hostIP/hostPort refused)
RESERVED_PATHS = {"/", "/dev", "/dev/log"}  # k8s_validation.go:44-48, check :707
MOUNT_FIELDS = {
    "name",
    "readOnly",
    "mountPath",
    "subPath",
}  # fieldmask.go:355-358 (+ propagation with a flag)
PROBE_FIELDS = {
    "httpGet",
    "tcpSocket",
    "exec",
    "grpc",
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
}  # fieldmask.go:382-388 with HandlerMask :403-406
HTTP_GET_FIELDS = {"host", "path", "scheme", "httpHeaders", "port"}  # fieldmask.go:436-440
RESOURCE_FIELDS = {"limits", "requests"}  # fieldmask.go:654-655
# Volume sources: secret/configMap/projected always, the rest behind a flag (fieldmask.go:59-81).
VOLUME_FLAGGED = {
    "emptyDir": "kubernetes.podspec-volumes-emptydir",
    "persistentVolumeClaim": "kubernetes.podspec-persistent-volume-claim",
    "hostPath": "kubernetes.podspec-volumes-hostpath",
    "csi": "kubernetes.podspec-volumes-csi",
    "image": "kubernetes.podspec-volumes-image",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def ksvc_pod_spec(isvc: dict[str, Any]) -> dict[str, Any]:
    """The PodSpec KServe puts into the Knative Service for a custom predictor.

    KS pkg/controller/v1beta1/inferenceservice/components/predictor.go:139-147 copies the predictor's inlined
    PodSpec unchanged; the defaulter names a single container ``kserve-container``
    (predictor_custom.go:65-73), and :152-157 appends INFERENCE_SERVICE_NAME to every container. Component
    fields (minReplicas, scaleTarget, timeout, labels, annotations …) go to the revision, not the pod spec.
    """
    spec = {k: copy.deepcopy(v) for k, v in isvc["spec"]["predictor"].items() if k not in COMPONENT_FIELDS}
    containers = spec["containers"]
    if len(containers) == 1 and not containers[0].get("name"):
        containers[0]["name"] = "kserve-container"
    for item in containers:
        item.setdefault("env", []).append(
            {"name": "INFERENCE_SERVICE_NAME", "value": isvc["metadata"]["name"]}
        )
    return spec


def knative_violations(pod: dict[str, Any], flags: dict[str, str]) -> list[str]:
    """Every field of ``pod`` Knative's webhook refuses (KN ValidatePodSpec, k8s_validation.go:391-436)."""
    problems: list[str] = []
    for key, value in pod.items():
        if key in POD_ALWAYS:
            continue
        if key == "automountServiceAccountToken":
            if value is not False:
                problems.append(f"{key}: only false is allowed ({KN} fieldmask.go:232-235)")
        elif key in POD_FLAGGED:
            if not _on(flags, POD_FLAGGED[key]) and not (
                key == "securityContext" and _on(flags, "secure-pod-defaults")
            ):
                problems.append(f"{key}: needs {POD_FLAGGED[key]} ({KN} fieldmask.go:237-288)")
        else:
            problems.append(f"{key}: not allowed in a Knative pod spec ({KN} fieldmask.go:289-298)")
    problems += _pod_security(pod.get("securityContext"), flags)
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    problems += _volumes(pod, volumes, flags)
    containers = pod.get("containers") or []
    ports = [p for c in containers for p in c.get("ports") or []]
    if len(ports) > 1:
        problems.append(f"ports: only one port across containers ({KN} k8s_validation.go:525-531)")
    if len(containers) > 1 and not _on(flags, "multi-container"):
        problems.append(f"containers: multi-container is off ({KN} k8s_validation.go:465-468)")
    serving = ports[0] if ports else {"name": "http", "containerPort": 8080}
    for index, container in enumerate(containers):
        where = f"containers[{index}]"
        user = bool(container.get("ports")) or len(containers) == 1
        problems += [f"{where}.{p}" for p in _container(container, volumes, flags, serving if user else None)]
    for index, container in enumerate(pod.get("initContainers") or []):
        problems += [f"initContainers[{index}].{p}" for p in _container(container, volumes, flags, None)]
    return problems


def _pod_security(context: dict[str, Any] | None, flags: dict[str, str]) -> list[str]:
    if not context:
        return []
    allowed = POD_SECURITY_FIELDS if _on(flags, "kubernetes.podspec-securitycontext") else set()
    if not allowed and _on(flags, "secure-pod-defaults"):
        allowed = {"seccompProfile"}  # fieldmask.go:670-681
    problems = [
        f"securityContext.{key}: needs kubernetes.podspec-securitycontext ({KN} fieldmask.go:683-692)"
        for key in context
        if key not in allowed
    ]
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if key in context and not 0 <= context[key] <= 2**31 - 1:
            problems.append(f"securityContext.{key}: out of 0..MaxInt32 ({KN} k8s_validation.go:948-967)")
    return problems


def _volumes(pod: dict[str, Any], volumes: dict[str, Any], flags: dict[str, str]) -> list[str]:
    problems = []
    mounted = {
        m["name"]
        for c in pod.get("containers", []) + pod.get("initContainers", [])
        for m in c.get("volumeMounts") or []
    }
    for name, volume in volumes.items():
        where = f"volumes[{name}]"
        if name not in mounted:
            problems.append(f"{where}: volume not mounted ({KN} k8s_validation.go:93-98)")
        if not DNS_LABEL.match(name):
            problems.append(f"{where}: name is not a DNS-1123 label ({KN} k8s_validation.go:142-146)")
        sources = [k for k in volume if k != "name"]
        if len(sources) != 1:
            problems.append(f"{where}: exactly one volume source ({KN} k8s_validation.go:190-211)")
        for source in sources:
            if source in VOLUME_FLAGGED and flags.get(VOLUME_FLAGGED[source]) != "enabled":
                problems.append(
                    f"{where}.{source}: needs {VOLUME_FLAGGED[source]} ({KN} k8s_validation.go:125-140)"
                )
            elif source not in VOLUME_FLAGGED and source not in ("secret", "configMap", "projected"):
                problems.append(f"{where}.{source}: volume type not allowed ({KN} fieldmask.go:51-86)")
        empty = volume.get("emptyDir")
        if empty is not None and empty.get("medium", "") not in ("", "Memory"):
            problems.append(
                f"{where}.emptyDir.medium: must be empty or Memory ({KN} k8s_validation.go:311-315)"
            )
    return problems


def _container(
    container: dict[str, Any], volumes: dict[str, Any], flags: dict[str, str], serving: dict[str, Any] | None
) -> list[str]:
    problems = [
        f"{key}: not allowed ({KN} fieldmask.go:306-341)" for key in container if key not in CONTAINER_FIELDS
    ]
    if container.get("name") == "queue-proxy":
        problems.append(f"name: queue-proxy is reserved ({KN} k8s_validation.go:50-52, :604-609)")
    if not container.get("image"):
        problems.append(f"image: required ({KN} k8s_validation.go:616-617)")
    for item in container.get("env") or []:
        problems += [
            f"env[{item.get('name')}].{key}: not allowed ({KN} fieldmask.go:503-516)"
            for key in item
            if key not in ENV_FIELDS
        ]
        if item.get("name") in RESERVED_ENV:
            problems.append(f"env[{item['name']}]: reserved by Knative ({KN} k8s_validation.go:54-59, :344)")
        source = item.get("valueFrom") or {}
        allowed = {"configMapKeyRef", "secretKeyRef"}
        if _on(flags, "kubernetes.podspec-fieldref"):
            allowed |= {"fieldRef", "resourceFieldRef"}
        for key in source:
            if key not in allowed:
                problems.append(
                    f"env[{item['name']}].valueFrom.{key}: needs kubernetes.podspec-fieldref "
                    f"({KN} k8s_validation.go:324-330, fieldmask.go:521-538)"
                )
    for port in container.get("ports") or []:
        problems += [
            f"ports.{key}: not allowed ({KN} fieldmask.go:480-498)" for key in port if key not in PORT_FIELDS
        ]
        if port.get("containerPort") in RESERVED_PORTS:
            problems.append(
                f"ports: {port['containerPort']} is reserved ({KN} k8s_validation.go:61-67, :798)"
            )
        if port.get("name", "") not in PORT_NAMES:
            problems.append(
                f"ports.name: {port['name']!r} is not '', h2c or http1 ({KN} k8s_validation.go:75-79, :772)"
            )
        if port.get("protocol", "TCP") != "TCP":
            problems.append(f"ports.protocol: TCP only ({KN} k8s_validation.go:768-770)")
    problems += [
        f"resources.{key}: not allowed ({KN} fieldmask.go:646-658)"
        for key in container.get("resources") or {}
        if key not in RESOURCE_FIELDS
    ]
    problems += _container_security(container.get("securityContext"), flags)
    problems += _mounts(container.get("volumeMounts") or [], volumes)
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        if container.get(name):
            problems += [
                f"{name}.{p}" for p in _probe(container[name], serving, readiness=name == "readinessProbe")
            ]
    return problems


def _container_security(context: dict[str, Any] | None, flags: dict[str, str]) -> list[str]:
    if not context:
        return []
    problems = [
        f"securityContext.{key}: not allowed ({KN} fieldmask.go:707-738)"
        for key in context
        if key not in CONTAINER_SECURITY_FIELDS and not (key == "privileged" and context[key] is False)
    ]
    added = (context.get("capabilities") or {}).get("add")
    bounded = added == ["NET_BIND_SERVICE"] and _on(flags, "secure-pod-defaults")
    if added and flags.get("kubernetes.containerspec-addcapabilities") != "enabled" and not bounded:
        problems.append(
            f"securityContext.capabilities.add: needs kubernetes.containerspec-addcapabilities "
            f"({KN} fieldmask.go:743-764)"
        )
    return problems


def _mounts(mounts: list[dict[str, Any]], volumes: dict[str, Any]) -> list[str]:
    problems, seen = [], set()
    for mount in mounts:
        where = f"volumeMounts[{mount.get('name')}]"
        problems += [
            f"{where}.{key}: not allowed ({KN} fieldmask.go:346-370)"
            for key in mount
            if key not in MOUNT_FIELDS
        ]
        if mount.get("name") not in volumes:
            problems.append(f"{where}: no matching volume ({KN} k8s_validation.go:697-702)")
        path = posixpath.normpath(mount.get("mountPath", ""))
        if path in RESERVED_PATHS:
            problems.append(f"{where}: mountPath {path} is reserved ({KN} k8s_validation.go:44-48, :707)")
        elif not path.startswith("/") or path in seen:
            problems.append(
                f"{where}: mountPath must be absolute and unique ({KN} k8s_validation.go:712-717)"
            )
        seen.add(path)
        volume = volumes.get(mount.get("name"), {})
        if "emptyDir" not in volume and "persistentVolumeClaim" not in volume and not mount.get("readOnly"):
            problems.append(
                f"{where}: must be readOnly for this volume type ({KN} k8s_validation.go:720-726)"
            )
    return problems


def _probe(probe: dict[str, Any], serving: dict[str, Any] | None, *, readiness: bool) -> list[str]:
    problems = [f"{key}: not allowed ({KN} fieldmask.go:375-391)" for key in probe if key not in PROBE_FIELDS]
    handlers = [key for key in ("httpGet", "tcpSocket", "exec", "grpc") if key in probe]
    if len(handlers) != 1:
        problems.append(f"exactly one handler ({KN} k8s_validation.go:904-908)")
    for key in probe.get("httpGet") or {}:
        if key not in HTTP_GET_FIELDS:
            problems.append(f"httpGet.{key}: not allowed ({KN} fieldmask.go:429-443)")
    port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
    if serving is not None and isinstance(port, str) and port != serving.get("name"):
        problems.append(f"port {port!r} must name the container port ({KN} k8s_validation.go:871-874)")
    if readiness:
        # Knative's defaults first (pkg/apis/serving/v1/revision_defaults.go:179-191), then its checks
        # (k8s_validation.go:816-851).
        period = probe.get("periodSeconds", 0)
        if period < 0 or probe.get("initialDelaySeconds", 0) < 0 or probe.get("successThreshold", 1) < 1:
            problems.append(
                f"periodSeconds/initialDelaySeconds/successThreshold out of range ({KN} :816-826)"
            )
        if period == 0 and ("failureThreshold" in probe or "timeoutSeconds" in probe):
            problems.append(
                f"failureThreshold/timeoutSeconds need periodSeconds > 0 ({KN} k8s_validation.go:829-842)"
            )
        if period > 0 and (probe.get("timeoutSeconds", 1) < 1 or probe.get("failureThreshold", 3) < 1):
            problems.append(
                f"timeoutSeconds and failureThreshold must be >= 1 ({KN} k8s_validation.go:843-851)"
            )
    return problems


# KServe's InferenceService validation (KS pkg/apis/serving/v1beta1/inference_service_validation.go).
ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # :46, :55, :469-474
KPA_METRICS = {"concurrency", "rps"}  # :636-643
HPA_METRICS = {"cpu", "memory"}  # :494-499
DEPLOYMENT_MODES = {"Knative", "Standard"}  # KS pkg/constants/constants.go:563-565
DROPPED_ANNOTATIONS = {
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
}  # constants.go:534-540


def kserve_violations(isvc: dict[str, Any]) -> list[str]:
    """Every rule of KServe's webhook (and of the behaviour the chart relies on) that ``isvc`` breaks."""
    meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
    annotations = meta.get("annotations") or {}
    problems = []
    if not ISVC_NAME.match(meta["name"]):
        problems.append(
            f"name: not [a-z]([-a-z0-9]*[a-z0-9])? ({KS} inference_service_validation.go:46,469-474)"
        )
    mode = annotations.get("serving.kserve.io/deploymentMode")
    if mode not in DEPLOYMENT_MODES:
        problems.append(f"deploymentMode {mode!r}: Knative or Standard ({KS} constants.go:559-587)")
    metric = predictor.get("scaleMetric")
    if mode == "Knative":
        if metric not in KPA_METRICS or (metric == "rps" and predictor.get("scaleTarget", 1) < 1):
            problems.append(
                f"scaleMetric {metric!r}: KPA takes concurrency or rps ({KS} validation.go:636-668)"
            )
    else:
        if annotations.get("serving.kserve.io/autoscalerClass") != "hpa":
            problems.append(f"autoscalerClass: hpa expected ({KS} constants.go:250,276-282)")
        target = predictor.get("scaleTarget", 80)
        if metric not in HPA_METRICS or (metric == "cpu" and not 1 <= target <= 100):
            problems.append(
                f"scaleMetric {metric!r}/{target}: cpu 1-100 or memory ({KS} validation.go:527-565)"
            )
    minimum, maximum = predictor.get("minReplicas", 1), predictor.get("maxReplicas", 0)
    if minimum < 0 or maximum < 0 or (maximum and minimum > maximum):
        problems.append(f"replicas {minimum}..{maximum} ({KS} component.go:374-388)")
    if predictor.get("containerConcurrency", 0) < 0:
        problems.append(f"containerConcurrency < 0 ({KS} component.go:390-398)")
    if DROPPED_ANNOTATIONS & set(annotations):
        problems.append(f"min-scale/max-scale annotations are dropped by KServe ({KS} constants.go:534-540)")
    containers = predictor["containers"]
    env = {e["name"]: e for e in containers[0].get("env") or []}
    if "PYTHONPATH" in env:
        problems.append(f"env PYTHONPATH is blocked ({KS} pkg/validation/env_policy.go:25-27)")
    if "PROTOCOL" in env and env["PROTOCOL"].get("value") not in ("v1", "v2"):
        problems.append(f"env PROTOCOL must be v1 or v2 ({KS} predictor_custom.go:51-62)")
    if "STORAGE_URI" in env and containers[0].get("name") != "kserve-container":
        problems.append(f"STORAGE_URI is read from kserve-container only ({KS} predictor_custom.go:75-88)")
    return problems


def injected_storage_initializer(isvc: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any] | None:
    """The init container KServe's pod webhook adds for a non-PVC ``STORAGE_URI``, merged with ``patch`` (the
    default ClusterStorageContainer's container), or None for pvc:// and baked models.

    KS pkg/webhook/admission/pod/storage_initializer_injector.go:541-551 builds it with
    pkg/utils/storage.go:311-333 (name, image, args, terminationMessagePolicy, resources: no securityContext)
    and :625-631 merges the ClusterStorageContainer's container into it.
    """
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0].get("env") or []}
    uri = env.get("STORAGE_URI")
    if not uri or uri.startswith("pvc://"):
        return None
    container = {
        "name": "storage-initializer",
        "image": "kserve/storage-initializer:v0.20.0",
        "args": [uri, "/mnt/models"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {
            "requests": {"cpu": "100m", "memory": "100Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
    }
    if patch:
        container = _merge(container, patch)
    return container


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def restricted_violations(pod_context: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """The Pod Security Standard "restricted" container rules one container breaks, given the pod's context.

    ref: https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
    """
    context = container.get("securityContext") or {}
    problems = []
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        problems.append("capabilities.drop must include ALL")
    if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
        problems.append("runAsNonRoot must be true")
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append("seccompProfile must be RuntimeDefault or Localhost")
    return problems
