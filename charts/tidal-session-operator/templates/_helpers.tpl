{{- define "tso.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tso.labels" -}}
app.kubernetes.io/name: tidal-session-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tso.selector" -}}
app.kubernetes.io/name: tidal-session-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The image reference: a digest, when given, pins the image whatever the tag says. */}}
{{- define "tso.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount every binding of the chart names. */}}
{{- define "tso.subject" -}}
- kind: ServiceAccount
  name: {{ include "tso.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/*
The operator's rules: the same as config/rbac/role.yaml, which controller-gen generates from
the code's +kubebuilder:rbac markers; the end-to-end test checks that they match. In
namespace mode they are a Role in each watched namespace, otherwise one ClusterRole.
*/}}
{{- define "tso.managerRules" -}}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "delete", "get", "list", "update", "watch"]
{{- /*
Binding checks a consumer pod's owner (ReplicaSet, Job, StatefulSet, DaemonSet) and resolves it
to its workload, one uncached read each.
*/}}
- apiGroups: ["apps"]
  resources: ["daemonsets", "replicasets", "statefulsets"]
  verbs: ["get"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get"]
{{- /*
The health endpoint's reviews. Both are cluster-scoped, so in namespace mode, where these rules
form a Role, they grant nothing: there the <release>-metrics-auth ClusterRole grants them.
*/}}
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["sessions.tidal-mcp.dev"]
  resources: ["tidalsessions"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["sessions.tidal-mcp.dev"]
  resources: ["tidalsessions/status"]
  verbs: ["patch"]
{{- end -}}

{{/* The metrics Service's name, which is also the job label a ServiceMonitor gives it. */}}
{{- define "tso.metricsService" -}}
{{- printf "%s-metrics" (include "tso.fullname" .) -}}
{{- end -}}
