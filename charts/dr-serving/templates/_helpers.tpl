{{/*
dr-serving.name: the chart name, or nameOverride; truncated to 63 characters (DNS label limit).
*/}}
{{- define "dr-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
dr-serving.fullname: prefix of every object name: fullnameOverride, else the release name when it already holds the
chart name, else "<release>-<chart>"; truncated to 63 characters.
*/}}
{{- define "dr-serving.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
dr-serving.chart: "<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "dr-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
dr-serving.selectorLabels: labels that select this release's objects; never holds the chart version.
*/}}
{{- define "dr-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dr-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
dr-serving.labels: the standard app.kubernetes.io/* labels plus commonLabels, for every object's metadata.
*/}}
{{- define "dr-serving.labels" -}}
helm.sh/chart: {{ include "dr-serving.chart" . }}
{{ include "dr-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dr-serving
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
dr-serving.predictorSelectorLabels: labels on every predictor pod of this release (PodMonitor, NetworkPolicy).
*/}}
{{- define "dr-serving.predictorSelectorLabels" -}}
{{ include "dr-serving.selectorLabels" . }}
app.kubernetes.io/component: predictor
{{- end }}

{{/*
dr-serving.serviceAccountName: the ServiceAccount the predictor pods run as.
*/}}
{{- define "dr-serving.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dr-serving.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
dr-serving.deploymentMode: the serving.kserve.io/deploymentMode annotation value for .Values.mode.
*/}}
{{- define "dr-serving.deploymentMode" -}}
{{- if eq .Values.mode "knative" }}Knative{{ else }}Standard{{ end }}
{{- end }}

{{/*
dr-serving.metricsPort: the pod port Prometheus scrapes: Knative renames the user container port to "user-port";
Standard mode keeps the container's own port name.
*/}}
{{- define "dr-serving.metricsPort" -}}
{{- if eq .Values.mode "knative" }}user-port{{ else }}http1{{ end }}
{{- end }}

{{/*
dr-serving.metricsAddress: relabelings that point a target found on the predictor's declared port at the metrics
port instead (the port is not declared: Knative admits one container port). "(.+)" keeps an IPv6 "[addr]".
*/}}
{{- define "dr-serving.metricsAddress" -}}
- sourceLabels: [__address__]
  regex: '(.+):[0-9]+'
  replacement: '${1}:{{ .Values.monitoring.metricsPort }}'
  targetLabel: __address__
{{- end }}

{{/*
dr-serving.targets: every enabled (model x pool) as YAML {targets: [...]}, sorted by model then pool, with the
resolved name, image (tag or digest), backend, precision, model directory and resource profile. Fails with one sentence on a bad reference.
*/}}
{{- define "dr-serving.targets" -}}
{{- $root := . }}
{{- $fullname := include "dr-serving.fullname" . }}
{{- $enabledPools := list }}
{{- range $poolName := keys .Values.pools | sortAlpha }}
{{- if (get $root.Values.pools $poolName).enabled }}
{{- $enabledPools = append $enabledPools $poolName }}
{{- end }}
{{- end }}
{{- $targets := list }}
{{- range $modelName := keys .Values.models | sortAlpha }}
{{- $model := get $root.Values.models $modelName }}
{{- if $model.enabled }}
{{- $pools := $enabledPools }}
{{- if $model.pools }}
{{- $pools = list }}
{{- range $p := $model.pools }}
{{- if not (hasKey $root.Values.pools $p) }}
{{- fail (printf "models.%s.pools lists %q, which is not a key of pools (have: %s)." $modelName $p (keys $root.Values.pools | sortAlpha | join ", ")) }}
{{- end }}
{{- if (get $root.Values.pools $p).enabled }}
{{- $pools = append $pools $p }}
{{- end }}
{{- end }}
{{- end }}
{{- $profileName := default $root.Values.profile $model.profile }}
{{- if not (hasKey $root.Values.profiles $profileName) }}
{{- fail (printf "Profile %q (model %s) is not a key of profiles (have: %s)." $profileName $modelName (keys $root.Values.profiles | sortAlpha | join ", ")) }}
{{- end }}
{{- $flavour := default $root.Values.image.flavour $model.flavour }}
{{- $backend := default (ternary "litert" "savedmodel" (eq $flavour "lite")) $model.backend }}
{{- $tag := default (printf "%s-%s" $root.Chart.AppVersion $flavour) $root.Values.image.tag }}
{{- $image := printf "%s:%s" $root.Values.image.repository $tag }}
{{- if $root.Values.image.digest }}
{{- $image = printf "%s@%s" $root.Values.image.repository $root.Values.image.digest }}
{{- end }}
{{- $precision := default "fp32" $model.precision }}
{{- if and (eq $precision "int8") (ne $backend "litert") }}
{{- fail (printf "models.%s.precision int8 needs the litert backend (the lite flavour); %s serves fp32 only." $modelName $backend) }}
{{- end }}
{{- if and (eq $precision "bf16") (ne $backend "savedmodel") }}
{{- fail (printf "models.%s.precision bf16 needs the savedmodel backend (the full flavour); %s serves fp32 and int8." $modelName $backend) }}
{{- end }}
{{- $modelDir := ternary "/mnt/models" "/opt/dr-serving/model" (eq $model.source "storageUri") }}
{{- range $poolName := $pools }}
{{- $pool := get $root.Values.pools $poolName }}
{{- $name := printf "%s-%s-%s" $fullname $modelName $poolName }}
{{- if gt (len $name) 45 }}
{{- fail (printf "InferenceService name %q is %d characters, more than 45 (KServe/Knative derive longer names from it); shorten the release name, fullnameOverride, model or pool name." $name (len $name)) }}
{{- end }}
{{- $profile := get $root.Values.profiles $profileName }}
{{- $targets = append $targets (dict "name" $name "model" $modelName "pool" $poolName "arch" $pool.arch "instanceType" $pool.instanceType "pricePerHour" $pool.pricePerHour "flavour" $flavour "backend" $backend "image" $image "precision" $precision "microBatch" (int (default 0 $model.microBatch)) "microBatchWaitMs" (default 0 $model.microBatchWaitMs) "threads" (int (default 0 $model.threads)) "source" $model.source "storageUri" ($model.storageUri | default "") "modelDir" $modelDir "profileName" $profileName "cpu" (toString $profile.cpu) "memory" (toString $profile.memory)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $targets }}
{{- fail "No InferenceService to render: enable at least one model and one pool it may run on." }}
{{- end }}
{{- toYaml (dict "targets" $targets) }}
{{- end }}

{{/*
dr-serving.nodeSelector: the node selector of one pool, from placement.* and the pool's own nodeSelector.
Called with (dict "root" $ "pool" <pool name>).
*/}}
{{- define "dr-serving.nodeSelector" -}}
{{- $pool := get .root.Values.pools .pool }}
{{- $sel := dict }}
{{- if .root.Values.placement.archSelector }}
{{- $_ := set $sel "kubernetes.io/arch" $pool.arch }}
{{- end }}
{{- if .root.Values.placement.poolLabelSelector }}
{{- $_ := set $sel .root.Values.placement.poolLabelKey .pool }}
{{- end }}
{{- if .root.Values.placement.instanceTypeSelector }}
{{- $_ := set $sel "node.kubernetes.io/instance-type" $pool.instanceType }}
{{- end }}
{{- $sel = merge (deepCopy ($pool.nodeSelector | default dict)) $sel }}
{{- if $sel }}
{{- toYaml $sel }}
{{- end }}
{{- end }}

{{/*
dr-serving.podSecurityContext: pod-level part of the restricted Pod Security Standard.
*/}}
{{- define "dr-serving.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
dr-serving.containerSecurityContext: container-level part of the restricted Pod Security Standard.
*/}}
{{- define "dr-serving.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
dr-serving.needsModelStoreEgress: "true" when an enabled model downloads from object storage or HTTPS (not pvc://).
*/}}
{{- define "dr-serving.needsModelStoreEgress" -}}
{{- range (include "dr-serving.targets" . | fromYaml).targets }}
{{- if and (eq .source "storageUri") (not (hasPrefix "pvc://" .storageUri)) }}true{{ end }}
{{- end }}
{{- end }}

{{/*
dr-serving.checkGracePeriod: fails the render unless a stopping pod outlives the drain plus a slow upload plus a
margin. Standard mode: terminationGracePeriodSeconds. Knative mode: Knative sets the pod's grace period to the
revision timeout (predictor.timeout; knative-v1.21.1 pkg/reconciler/revision/resources/deploy.go:302).
*/}}
{{- define "dr-serving.checkGracePeriod" -}}
{{- $margin := 5 }}
{{- $p := .Values.predictor }}
{{- if eq .Values.mode "standard" }}
{{- $need := add (int $p.drainSeconds) (int $p.bodyTimeoutSeconds) $margin }}
{{- if le (int $p.terminationGracePeriodSeconds) $need }}
{{- fail (printf "predictor.terminationGracePeriodSeconds (%v) must exceed drainSeconds (%v) + bodyTimeoutSeconds (%v) + %d s margin = %d, or a pod stopping with a slow upload in flight is killed." $p.terminationGracePeriodSeconds $p.drainSeconds $p.bodyTimeoutSeconds $margin $need) }}
{{- end }}
{{- else }}
{{- $need := add (int $p.bodyTimeoutSeconds) $margin }}
{{- if le (int $p.timeout) $need }}
{{- fail (printf "predictor.timeout (%v, Knative's grace period for a stopping pod) must exceed bodyTimeoutSeconds (%v) + %d s margin = %d." $p.timeout $p.bodyTimeoutSeconds $margin $need) }}
{{- end }}
{{- end }}
{{- end }}
