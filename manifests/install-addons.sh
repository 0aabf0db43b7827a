#!/usr/bin/env bash
# Install the cluster add-ons dr-serving needs, at the versions pinned in manifests/versions.env:
#   cert-manager -> Knative Serving + Kourier (+ our config patches) -> KServe (+ ingress overrides)
#   -> metrics-server (Standard mode's HPA) -> kube-prometheus-stack + the Grafana dashboard.
# Order rules (tests/chart/test_install_order.py runs this script against a stand-in kubectl that fails like the API
# server): a namespace exists before objects are applied into it, and CRDs are Established before objects of
# their kinds are applied.
# Upstream release YAMLs are applied by pinned URL (needs internet). Idempotent: re-running re-applies.
#
# Usage: manifests/install-addons.sh [--dry-run] [STEP...]
#   STEP: cert-manager | knative | kserve | metrics-server | monitoring | fast-autoscaler (default: all but the last)
#   --dry-run prints every command instead of running it.
# Environment: KUBECTL (default kubectl), HELM (default helm), FAST_SCALE_TO_ZERO=1 adds the fast-autoscaler step,
#   KOURIER_NODEPORT=0 keeps Kourier's LoadBalancer Service (real clusters such as EKS; kind needs the NodePort),
#   METRICS_SERVER_INSECURE_TLS=1 (default) adds --kubelet-insecure-tls (kind's kubelets have self-signed certs;
#   set 0 on EKS).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
KUBECTL="${KUBECTL:-kubectl}"
HELM="${HELM:-helm}"
DRY_RUN=0
WAIT_TIMEOUT="${WAIT_TIMEOUT:-600s}"

CERT_MANAGER_URL="https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
KNATIVE_CRDS_URL="https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}/serving-crds.yaml"
KNATIVE_CORE_URL="https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}/serving-core.yaml"
KOURIER_URL="https://github.com/knative-extensions/net-kourier/releases/download/${KNATIVE_KOURIER_VERSION}/kourier.yaml"
KSERVE_CRDS_URL="https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-crds.yaml"
KSERVE_URL="https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve.yaml"
KSERVE_RESOURCES_URL="https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-cluster-resources.yaml"
METRICS_SERVER_URL="https://github.com/kubernetes-sigs/metrics-server/releases/download/${METRICS_SERVER_VERSION}/components.yaml"
PROMETHEUS_REPO="https://prometheus-community.github.io/helm-charts"

say() { echo ">> $*"; }
run() {
  echo "+ $*"
  if [[ "$DRY_RUN" == 0 ]]; then "$@"; fi
}

ensure_namespace() {
  # Create a namespace unless it exists (apply of a client-side dry-run object is idempotent).
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "+ $KUBECTL create namespace $1 --dry-run=client -o yaml | $KUBECTL apply -f -"
  else
    echo "+ $KUBECTL create namespace $1 --dry-run=client -o yaml | $KUBECTL apply -f -"
    "$KUBECTL" create namespace "$1" --dry-run=client -o yaml | "$KUBECTL" apply -f -
  fi
}

install_cert_manager() {
  say "cert-manager ${CERT_MANAGER_VERSION} (KServe's webhook certificates)"
  run "$KUBECTL" apply -f "$CERT_MANAGER_URL"
  run "$KUBECTL" wait deployment --all -n cert-manager --for=condition=Available --timeout="$WAIT_TIMEOUT"
}

install_knative() {
  say "Knative Serving ${KNATIVE_SERVING_VERSION} with Kourier ${KNATIVE_KOURIER_VERSION}"
  run "$KUBECTL" apply -f "$KNATIVE_CRDS_URL"
  # serving-core.yaml holds an Image object (caching.internal.knative.dev, knative config/core/999-cache.yaml),
  # so every CRD of serving-crds.yaml must be Established, not only services.serving.knative.dev.
  run "$KUBECTL" wait crd --all --for=condition=Established --timeout="$WAIT_TIMEOUT"
  run "$KUBECTL" apply -f "$KNATIVE_CORE_URL"
  run "$KUBECTL" wait deployment --all -n knative-serving --for=condition=Available --timeout="$WAIT_TIMEOUT"
  run "$KUBECTL" apply -f "$KOURIER_URL"
  run "$KUBECTL" wait deployment --all -n kourier-system --for=condition=Available --timeout="$WAIT_TIMEOUT"
  say "Knative config: Kourier ingress, example.com domain, podspec feature flags, tag resolution skipped for kind.local"
  local name
  for name in config-network config-domain config-features config-deployment; do
    run "$KUBECTL" patch configmap "$name" -n knative-serving --type merge --patch-file "$HERE/knative/$name.yaml"
  done
  if [[ "${KOURIER_NODEPORT:-1}" == 1 ]]; then
    say "Kourier gateway on NodePort 31080 (kind-config.yaml maps it to 127.0.0.1:8080)"
    run "$KUBECTL" patch service kourier -n kourier-system --type strategic \
      --patch-file "$HERE/knative/kourier-service-nodeport.yaml"
  else
    say "Kourier gateway left as upstream's LoadBalancer Service (KOURIER_NODEPORT=0, e.g. on EKS)"
  fi
}

install_fast_autoscaler() {
  say "Knative autoscaler: fast scale-to-zero for experiments (about 12 s after the last request)"
  run "$KUBECTL" patch configmap config-autoscaler -n knative-serving --type merge \
    --patch-file "$HERE/knative/config-autoscaler-fast.yaml"
}

merged_ingress() {
  # Prints inferenceservice-config's ingress JSON with kserve/ingress-overrides.json merged in.
  local current
  current="$("$KUBECTL" get configmap inferenceservice-config -n kserve -o jsonpath='{.data.ingress}')"
  python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d.update(json.load(open(sys.argv[2])));
print(json.dumps({"data": {"ingress": json.dumps(d, indent=2)}}))' "$current" "$HERE/kserve/ingress-overrides.json"
}

install_kserve() {
  say "KServe ${KSERVE_VERSION}"
  # kserve.yaml holds no Namespace (kserve v0.20.0 hack/release/generate-install.sh:116-118 strips it) but holds
  # ClusterStorageContainer objects next to the CRDs: namespace first, CRDs Established, then the rest.
  ensure_namespace kserve
  run "$KUBECTL" apply --server-side --force-conflicts -f "$KSERVE_CRDS_URL"
  run "$KUBECTL" wait crd --all --for=condition=Established --timeout="$WAIT_TIMEOUT"
  run "$KUBECTL" apply --server-side --force-conflicts -f "$KSERVE_URL"
  run "$KUBECTL" wait deployment --all -n kserve --for=condition=Available --timeout="$WAIT_TIMEOUT"
  run "$KUBECTL" apply --server-side --force-conflicts -f "$KSERVE_RESOURCES_URL"
  say "KServe storage-initializer: restricted securityContext (kserve/storage-container-restricted.yaml)"
  run "$KUBECTL" patch clusterstoragecontainer default --type merge \
    --patch-file "$HERE/kserve/storage-container-restricted.yaml"
  say "KServe ingress: no Istio VirtualService (Kourier), example.com domain"
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "+ $KUBECTL patch configmap inferenceservice-config -n kserve --type merge -p <ingress merged with kserve/ingress-overrides.json>"
  else
    run "$KUBECTL" patch configmap inferenceservice-config -n kserve --type merge -p "$(merged_ingress)"
  fi
  run "$KUBECTL" rollout restart deployment/kserve-controller-manager -n kserve
  run "$KUBECTL" rollout status deployment/kserve-controller-manager -n kserve --timeout="$WAIT_TIMEOUT"
}

install_metrics_server() {
  say "metrics-server ${METRICS_SERVER_VERSION} (resource metrics for Standard mode's HorizontalPodAutoscaler)"
  run "$KUBECTL" apply -f "$METRICS_SERVER_URL"
  if [[ "${METRICS_SERVER_INSECURE_TLS:-1}" == 1 ]]; then
    run "$KUBECTL" patch deployment metrics-server -n kube-system --type json \
      -p '[{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--kubelet-insecure-tls"}]'
  fi
  run "$KUBECTL" rollout status deployment/metrics-server -n kube-system --timeout="$WAIT_TIMEOUT"
}

install_monitoring() {
  say "kube-prometheus-stack ${KUBE_PROMETHEUS_STACK_VERSION} (Prometheus on 127.0.0.1:9090, Grafana on 127.0.0.1:3000)"
  run "$HELM" upgrade --install kube-prometheus-stack kube-prometheus-stack --repo "$PROMETHEUS_REPO" \
    --version "$KUBE_PROMETHEUS_STACK_VERSION" --namespace monitoring --create-namespace \
    -f "$HERE/monitoring/kube-prometheus-stack-values.yaml" --wait --timeout "$WAIT_TIMEOUT"
  say "Grafana dashboard ConfigMap from monitoring/dashboards/"
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "+ $KUBECTL create configmap dr-serving-dashboards -n monitoring --from-file=$HERE/monitoring/dashboards | label grafana_dashboard=1 | apply"
  else
    "$KUBECTL" create configmap dr-serving-dashboards -n monitoring --from-file="$HERE/monitoring/dashboards" \
      --dry-run=client -o yaml \
      | "$KUBECTL" label --local -f - grafana_dashboard=1 app.kubernetes.io/part-of=dr-serving -o yaml \
      | "$KUBECTL" apply -f -
  fi
}

main() {
  local steps=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --dry-run) DRY_RUN=1 ;;
      cert-manager | knative | kserve | metrics-server | monitoring | fast-autoscaler) steps+=("$1") ;;
      -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}"; return 0 ;;
      *) echo "Error: unknown step '$1'; expected cert-manager, knative, kserve, metrics-server, monitoring or fast-autoscaler." >&2; return 2 ;;
    esac
    shift
  done
  if [[ ${#steps[@]} -eq 0 ]]; then
    steps=(cert-manager knative kserve metrics-server monitoring)
    if [[ "${FAST_SCALE_TO_ZERO:-0}" == 1 ]]; then steps+=(fast-autoscaler); fi
  fi
  if [[ "$DRY_RUN" == 0 ]]; then
    command -v "$KUBECTL" >/dev/null || { echo "Error: $KUBECTL not found; run: make tools" >&2; return 1; }
    command -v "$HELM" >/dev/null || { echo "Error: $HELM not found; run: make tools" >&2; return 1; }
  fi
  local step
  for step in "${steps[@]}"; do
    "install_${step//-/_}"
  done
  say "add-ons ready: ${steps[*]}"
}

main "$@"
