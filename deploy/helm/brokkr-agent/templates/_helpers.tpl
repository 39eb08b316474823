{{/* Names and labels. */}}
{{- define "brokkr-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "brokkr-agent.fullname" -}}
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

{{- define "brokkr-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "brokkr-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "brokkr-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "brokkr-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: brokkr
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "brokkr-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "brokkr-agent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "brokkr-agent.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where the agent keeps its inventory ConfigMaps. */}}
{{- define "brokkr-agent.inventoryNamespace" -}}
{{- default .Release.Namespace .Values.agent.namespace }}
{{- end }}

{{- define "brokkr-agent.secretName" -}}
{{- default (include "brokkr-agent.fullname" .) .Values.broker.existingSecret }}
{{- end }}

{{- define "brokkr-agent.validate" -}}
{{- if not (has .Values.rbac.scope (list "cluster" "namespaced")) }}
{{- fail "rbac.scope must be cluster or namespaced" }}
{{- end }}
{{- if and (eq .Values.rbac.scope "namespaced") (or .Values.agent.kubeEvents.enabled .Values.agent.podLogs.enabled) }}
{{- fail "rbac.scope=namespaced: the agent cannot watch events and pods cluster-wide; set agent.kubeEvents.enabled=false and agent.podLogs.enabled=false" }}
{{- end }}
{{- end }}

{{/*
The rules of namespaced kinds: the ClusterRole's in cluster scope, each Role's in namespaced scope.
Every verb is one the agent's code uses (tests/deploy derives them from a run against the fake
API server); nothing is granted with "*".
*/}}
{{- define "brokkr-agent.namespacedRules" -}}
{{- range .Values.rbac.managedResources }}
# Stack objects: get (the live object before an apply, the owner check before a prune, a Job's
# status in a work order, the workload of a health check, an event's owner chain), patch
# (server-side apply, and its dry run), create (the API server authorizes an apply that
# creates the object as create too), delete (prune of what left the stack).
- apiGroups: {{ toJson .apiGroups }}
  resources: {{ toJson .resources }}
  verbs: [get, create, patch, delete]
{{- end }}
# Health checks and diagnostics list a workload's pods by its selector; telemetry watches pods
# for their logs and looks pods up as owners of events.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Diagnostics tail container logs; log shipping follows them.
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Diagnostics list the events of a stack's objects; event shipping watches them.
- apiGroups: [""]
  resources: [events]
  verbs: [list, watch]
# A Deployment's pods are found through its ReplicaSets (listed, and read as owners of pods);
# a CronJob's through its Jobs.
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list]
{{- if .Values.rbac.shipwright.enabled }}
# Build work orders: apply the Build, create a BuildRun of it per attempt and read its status.
- apiGroups: [shipwright.io]
  resources: [builds]
  verbs: [get, patch]
- apiGroups: [shipwright.io]
  resources: [buildruns]
  verbs: [create, get]
{{- end }}
{{- with .Values.rbac.additionalRules }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The agent's own per-stack inventory ConfigMaps, in its namespace only (a Role whatever the scope):
read one before each apply, write it (patch; create when new), delete it with the stack.
*/}}
{{- define "brokkr-agent.inventoryRules" -}}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch, delete]
{{- end }}
