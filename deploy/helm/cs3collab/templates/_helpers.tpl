{{/* Names and labels shared by every manifest of the chart. */}}
{{- define "cs3collab.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cs3collab.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cs3collab.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cs3collab.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cs3collab.labels" -}}
{{ include "cs3collab.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "cs3collab.redisUrl" -}}
{{- if .Values.journal.redis.url -}}
{{- .Values.journal.redis.url -}}
{{- else if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379/0" (include "cs3collab.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Refuse values that cannot work, at render time. */}}
{{- define "cs3collab.validate" -}}
{{- if not .Values.gateway -}}
{{- fail "gateway is required: host:port of the site's CS3 gateway (Reva's gateway gRPC address)" -}}
{{- end -}}
{{- if not (has .Values.journal.backend (list "sqlite" "redis")) -}}
{{- fail "journal.backend must be sqlite or redis" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (eq .Values.journal.backend "sqlite") -}}
{{- fail "replicaCount > 1 needs journal.backend: redis (the SQLite journal is one replica's file)" -}}
{{- end -}}
{{- if and (eq .Values.journal.backend "redis") (not (include "cs3collab.redisUrl" .)) -}}
{{- fail "journal.backend redis needs journal.redis.url or redis.enabled: true" -}}
{{- end -}}
{{- end -}}
