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
