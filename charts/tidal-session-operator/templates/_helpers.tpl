{{- define "tso.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tso.labels" -}}
app.kubernetes.io/name: tidal-session-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tso.selector" -}}
app.kubernetes.io/name: tidal-session-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
