{{/*
Names and labels shared by every template.
*/}}

{{/* The operator's name: its Deployment, ServiceAccount, Service and RBAC objects. */}}
{{- define "labeljob.operatorName" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The ServiceAccount of worker and inference pods (fixed: the operator uses this name). */}}
{{- define "labeljob.workerServiceAccount" -}}
labeljob-worker
{{- end -}}

{{- define "labeljob.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "labeljob.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "labeljob.labels" -}}
helm.sh/chart: {{ include "labeljob.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: labeljob
{{- end -}}

{{/* image reference from {repository, tag}; an empty tag means the chart's appVersion. */}}
{{- define "labeljob.image" -}}
{{- $img := index . 0 -}}
{{- $root := index . 1 -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/* Namespaces that get the worker ServiceAccount, as a list. */}}
{{- define "labeljob.workerNamespaces" -}}
{{- if .Values.workerNamespaces -}}
{{- toJson .Values.workerNamespaces -}}
{{- else -}}
{{- toJson (list (default .Release.Namespace .Values.watchNamespace)) -}}
{{- end -}}
{{- end -}}

{{/*
The operator's permissions, exactly what `labeljob-operator rbac` prints; used by the
ClusterRole, or by the Role in watchNamespace. tests/python/test_chart.py compares them.
*/}}
{{- define "labeljob.operatorRules" -}}
- apiGroups: ["labeljob.dev"]
  resources: ["labeljobs"]
  verbs: ["get", "list", "watch", "patch", "update", "delete"]
- apiGroups: ["labeljob.dev"]
  resources: ["labeljobs/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["labeljob.dev"]
  resources: ["labeljobs/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}
