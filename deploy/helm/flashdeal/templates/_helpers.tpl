{{/*
Names and labels. Every object carries the recommended app.kubernetes.io/*
labels; pods of a role are selected by name, instance and component (the
role), which never change after install (a Deployment's selector is
immutable).
*/}}

{{- define "flashdeal.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-flashdeal, or just <release> when it already contains the chart name. */}}
{{- define "flashdeal.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flashdeal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. Argument: the root context. */}}
{{- define "flashdeal.labels" -}}
helm.sh/chart: {{ include "flashdeal.chart" . }}
app.kubernetes.io/name: {{ include "flashdeal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flashdeal
{{- end -}}

{{/* Selector labels of one role. Argument: dict "root" . "role" "<role>". */}}
{{- define "flashdeal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flashdeal.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/* All labels of one role's objects. Argument: dict "root" . "role" "<role>". */}}
{{- define "flashdeal.roleLabels" -}}
{{ include "flashdeal.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/* Object name of one role: <fullname>-<role>. */}}
{{- define "flashdeal.roleName" -}}
{{- printf "%s-%s" (include "flashdeal.fullname" .root) .role | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The pinned image: repository@digest when a digest is set, else repository:tag. */}}
{{- define "flashdeal.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- if or (not $img.tag) (eq (toString $img.tag) "latest") -}}
{{- fail "image.tag must be pinned (not empty, not \"latest\"), or set image.digest" -}}
{{- end -}}
{{- printf "%s:%s" $img.repository (toString $img.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Environment shared by every FlashDeal container: brokers, Redis, partitions,
the shared `env`, OpenTelemetry. Argument: dict "root" . "role" "<role>".
*/}}
{{- define "flashdeal.commonEnv" -}}
{{- $v := .root.Values -}}
- name: KAFKA_BROKERS
  value: {{ $v.kafka.brokers | quote }}
{{- if $v.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.redis.existingSecret }}
      key: {{ $v.redis.existingSecretKey }}
{{- else }}
- name: REDIS_URL
  value: {{ $v.redis.url | quote }}
{{- end }}
- name: FLASHDEAL_PARTITIONS
  value: {{ $v.partitions | quote }}
{{- range $name, $value := $v.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- if $v.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.otel.endpoint | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "flashdeal-%s" .role | quote }}
{{- end -}}

{{/*
The *_FILE variables of a list of `secrets` entries. Argument:
dict "root" . "names" (list "ordersDatabaseUrl" ...).
*/}}
{{- define "flashdeal.secretEnv" -}}
{{- range .names }}
{{- $s := get $.root.Values.secrets . }}
{{- if not $s }}{{ fail (printf "secrets.%s is not defined in values" .) }}{{ end }}
- name: {{ $s.env }}
  value: {{ printf "/run/secrets/%s" $s.file | quote }}
{{- end }}
{{- end -}}

{{/*
One projected volume "secrets" holding every listed secret as
/run/secrets/<file> (read-only, group-readable through fsGroup). Argument:
dict "root" . "names" (list ...). Renders nothing for an empty list.
*/}}
{{- define "flashdeal.secretVolume" -}}
{{- if .names }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
    {{- range .names }}
    {{- $s := get $.root.Values.secrets . }}
    - secret:
        name: {{ $s.existingSecret }}
        items:
        - key: {{ $s.key }}
          path: {{ $s.file }}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "flashdeal.secretMount" -}}
{{- if .names }}
- name: secrets
  mountPath: /run/secrets
  readOnly: true
{{- end }}
{{- end -}}

{{/* The role's values: the camelCase key of a role name. */}}
{{- define "flashdeal.roleKey" -}}
{{- camelcase . | untitle -}}
{{- end -}}

{{/*
KEDA bounds: maxReplicaCount may not exceed the partition count (a consumer
beyond it owns no partition and sits idle), minReplicaCount must be at least
1 (at zero the role's other consumer groups would stop too) and at most max.
Argument: dict "root" . "role" "<role>" "as" <autoscaling values>.
*/}}
{{- define "flashdeal.validateAutoscaling" -}}
{{- $a := .as -}}
{{- $p := int .root.Values.partitions -}}
{{- if gt (int $a.maxReplicaCount) $p -}}
{{- fail (printf "%s.autoscaling.maxReplicaCount (%d) exceeds partitions (%d): consumers beyond the partition count of %s get no partition" (include "flashdeal.roleKey" .role) (int $a.maxReplicaCount) $p $a.topic) -}}
{{- end -}}
{{- if lt (int $a.minReplicaCount) 1 -}}
{{- fail (printf "%s.autoscaling.minReplicaCount must be >= 1: at zero the role's other consumer groups stop as well" (include "flashdeal.roleKey" .role)) -}}
{{- end -}}
{{- if gt (int $a.minReplicaCount) (int $a.maxReplicaCount) -}}
{{- fail (printf "%s.autoscaling.minReplicaCount (%d) exceeds maxReplicaCount (%d)" (include "flashdeal.roleKey" .role) (int $a.minReplicaCount) (int $a.maxReplicaCount)) -}}
{{- end -}}
{{- end -}}

{{/*
A Deployment running `flashdeal <role>`. Argument:
dict "root" . "role" "<role>" "values" <role values> "http" <bool>.
The gateway (http) is probed on its HTTP port: readiness /readyz (PostgreSQL,
Redis and the broker answer), liveness /healthz (the process serves). The
other roles have no HTTP server of their own; they serve /metrics on
FLASHDEAL_METRICS_ADDR, and are probed there.
*/}}
{{- define "flashdeal.deployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $role := .role -}}
{{- $names := $v.secretFiles | default list -}}
{{- $ctx := dict "root" $root "role" $role -}}
{{- $autoscaled := and $v.autoscaling $v.autoscaling.enabled -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "flashdeal.roleName" $ctx }}
  labels:
    {{- include "flashdeal.roleLabels" $ctx | nindent 4 }}
spec:
  {{- if not $autoscaled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "flashdeal.selectorLabels" $ctx | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "flashdeal.roleLabels" $ctx | nindent 8 }}
      {{- if $root.Values.metrics.annotations }}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/path: /metrics
        prometheus.io/port: {{ ternary "8080" (toString $root.Values.metrics.port) .http | quote }}
      {{- end }}
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds | default 30 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- if $root.Values.topologySpread.enabled }}
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: {{ $root.Values.topologySpread.topologyKey }}
        whenUnsatisfiable: ScheduleAnyway
        labelSelector:
          matchLabels:
            {{- include "flashdeal.selectorLabels" $ctx | nindent 12 }}
      {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
      - name: {{ $role }}
        image: {{ include "flashdeal.image" $root }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        args: [{{ $role | quote }}]
        env:
        {{- include "flashdeal.commonEnv" $ctx | nindent 8 }}
        {{- if .http }}
        - name: FLASHDEAL_HTTP_ADDR
          value: "0.0.0.0:8080"
        {{- else }}
        - name: FLASHDEAL_METRICS_ADDR
          value: {{ printf "0.0.0.0:%v" $root.Values.metrics.port | quote }}
        {{- end }}
        {{- range $name, $value := $v.env }}
        - name: {{ $name }}
          value: {{ $value | quote }}
        {{- end }}
        {{- with (include "flashdeal.secretEnv" (dict "root" $root "names" $names) | trim) }}
{{ . | indent 8 }}
{{- end }}
        ports:
        {{- if .http }}
        - name: http
          containerPort: 8080
          protocol: TCP
        {{- else }}
        - name: metrics
          containerPort: {{ $root.Values.metrics.port }}
          protocol: TCP
        {{- end }}
        {{- if .http }}
        # Boot checks the topics (up to 30 s) before it listens: the startup
        # probe gives it 60 s before liveness counts.
        startupProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 2
          failureThreshold: 30
        readinessProbe:
          httpGet: {path: /readyz, port: http}
          periodSeconds: 5
          timeoutSeconds: 3
          failureThreshold: 2
        livenessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 10
          timeoutSeconds: 3
          failureThreshold: 3
        {{- else }}
        # The metrics listener is bound after config validation and the
        # topic check, so it answering means the role booted; it runs on the
        # same runtime as the consume loop.
        startupProbe:
          httpGet: {path: /metrics, port: metrics}
          periodSeconds: 2
          failureThreshold: 30
        readinessProbe:
          httpGet: {path: /metrics, port: metrics}
          periodSeconds: 10
          timeoutSeconds: 3
          failureThreshold: 3
        livenessProbe:
          httpGet: {path: /metrics, port: metrics}
          periodSeconds: 10
          timeoutSeconds: 3
          failureThreshold: 3
        {{- end }}
        {{- if $v.preStopSleepSeconds }}
        # Keep serving while the endpoint removal reaches the Service and
        # Ingress, then SIGTERM (no exec: the kubelet's sleep action).
        lifecycle:
          preStop:
            sleep:
              seconds: {{ $v.preStopSleepSeconds }}
        {{- end }}
        resources:
          {{- toYaml $v.resources | nindent 10 }}
        securityContext:
          {{- toYaml $root.Values.securityContext | nindent 10 }}
        volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with (include "flashdeal.secretMount" (dict "names" $names) | trim) }}
{{ . | indent 8 }}
{{- end }}
      volumes:
      - name: tmp
        emptyDir:
          sizeLimit: 64Mi
      {{- with (include "flashdeal.secretVolume" (dict "root" $root "names" $names) | trim) }}
{{ . | indent 6 }}
{{- end }}
{{- end -}}
