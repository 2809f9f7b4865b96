{{- define "switchboard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "switchboard.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "switchboard.secretName" -}}
{{- if .Values.secrets.create -}}{{ include "switchboard.fullname" . }}{{- else -}}{{ .Values.secrets.existingSecret }}{{- end -}}
{{- end -}}

{{/* The store URL for the chosen Redis mode; the password, if any, from the environment */}}
{{- define "switchboard.store" -}}
{{- $r := .Values.redis -}}
{{- $auth := ternary ":${REDIS_PASSWORD}@" "" $r.passwordFromSecret -}}
{{- if eq $r.mode "memory" -}}
memory://
{{- else if eq $r.mode "single" -}}
{{ ternary "rediss" "redis" $r.single.tls }}://{{ $auth }}{{ $r.single.host }}:{{ $r.single.port }}/{{ $r.single.db }}
{{- else if eq $r.mode "sentinel" -}}
redis+sentinel://{{ $auth }}{{ join "," $r.sentinel.sentinels }}/{{ $r.sentinel.service }}/{{ $r.sentinel.db }}
{{- else if eq $r.mode "cluster" -}}
redis+cluster://{{ $auth }}{{ join "," $r.cluster.nodes }}
{{- else -}}
{{- fail (printf "redis.mode must be memory, single, sentinel or cluster, not %q" $r.mode) -}}
{{- end -}}
{{- end -}}
