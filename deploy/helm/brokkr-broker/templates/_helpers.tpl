{{/* Names and labels. */}}
{{- define "brokkr-broker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "brokkr-broker.fullname" -}}
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

{{- define "brokkr-broker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "brokkr-broker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "brokkr-broker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "brokkr-broker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: broker
app.kubernetes.io/part-of: brokkr
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "brokkr-broker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "brokkr-broker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "brokkr-broker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* PostgreSQL is configured (by value or by a Secret of the user's). */}}
{{- define "brokkr-broker.postgres" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/*
Worker processes per pod: the value when given; else 1 on SQLite (one writer), and on PostgreSQL
one per CPU of resources.requests.cpu, rounded up ("500m", "1.5", 2), at least 1: a worker is
one Python process and uses one core.
*/}}
{{- define "brokkr-broker.workers" -}}
{{- $cpu := dig "requests" "cpu" "" (.Values.resources | default dict) | toString }}
{{- if not (kindIs "invalid" .Values.workers) }}
{{- .Values.workers }}
{{- else if or (not (include "brokkr-broker.postgres" .)) (eq $cpu "") }}
{{- 1 }}
{{- else if hasSuffix "m" $cpu }}
{{- min 256 (max 1 (int (ceil (divf (trimSuffix "m" $cpu) 1000)))) }}
{{- else }}
{{- min 256 (max 1 (int (ceil (float64 $cpu)))) }}
{{- end }}
{{- end }}

{{/* The chart creates its Secret when some credential is given by value. */}}
{{- define "brokkr-broker.ownSecret" -}}
{{- $auth := .Values.auth }}
{{- $byValue := or $auth.adminPak $auth.adminPakHash $auth.webhookEncryptionKey }}
{{- if or (and $byValue (not $auth.existingSecret)) (and .Values.database.url (not .Values.database.existingSecret)) }}true{{ end }}
{{- end }}

{{/*
Refuse values that cannot work, with a message saying what to set. Several brokers are safe only
on one PostgreSQL database (D21) sharing one webhook key: on SQLite each pod would hold a database
of its own, and each would generate a key of its own.
*/}}
{{- define "brokkr-broker.validate" -}}
{{- $scaled := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- if lt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount must be at least 1" }}
{{- end }}
{{- if and $scaled (not (include "brokkr-broker.postgres" .)) }}
{{- fail "replicaCount > 1 (or autoscaling.enabled) requires PostgreSQL: set database.url or database.existingSecret (SQLite serves a single replica only)" }}
{{- end }}
{{- if and $scaled (not (or .Values.auth.webhookEncryptionKey .Values.auth.existingSecret)) }}
{{- fail "replicaCount > 1 (or autoscaling.enabled) requires one webhook encryption key shared by every replica: set auth.webhookEncryptionKey or auth.existingSecret" }}
{{- end }}
{{- if and .Values.persistence.enabled $scaled }}
{{- fail "persistence.enabled is for a single-replica SQLite broker only: with PostgreSQL keep the data directory an emptyDir" }}
{{- end }}
{{- if and .Values.persistence.enabled (include "brokkr-broker.postgres" .) }}
{{- fail "persistence.enabled is for a single-replica SQLite broker only: with PostgreSQL keep the data directory an emptyDir" }}
{{- end }}
{{- if not (kindIs "invalid" .Values.workers) }}
{{- if not (regexMatch "^[0-9]+$" (toString .Values.workers)) }}
{{- fail "workers must be a whole number: 0 (the broker counts the cores it may use) or 1 to 256" }}
{{- end }}
{{- if gt (int .Values.workers) 256 }}
{{- fail "workers must be a whole number: 0 (the broker counts the cores it may use) or 1 to 256" }}
{{- end }}
{{- if and (gt (int .Values.workers) 1) (not (include "brokkr-broker.postgres" .)) }}
{{- fail "workers > 1 requires PostgreSQL: set database.url or database.existingSecret (SQLite has one writer: a single worker)" }}
{{- end }}
{{- end }}
{{- with .Values.auth.webhookEncryptionKey }}
{{- if not (regexMatch "^[0-9a-fA-F]{64}$" .) }}
{{- fail "auth.webhookEncryptionKey must be 64 hexadecimal characters (openssl rand -hex 32)" }}
{{- end }}
{{- end }}
{{- if and .Values.auth.adminPak .Values.auth.adminPakHash }}
{{- fail "set auth.adminPak or auth.adminPakHash, not both" }}
{{- end }}
{{- $owned := dict "database" (list "url") "broker" (list "host" "port" "workers" "admin_pak" "admin_pak_hash" "webhook_encryption_key") }}
{{- range $key, $value := .Values.config }}
{{- if eq $key "data_dir" }}
{{- fail "config.data_dir is set by the chart (the data volume, see persistence)" }}
{{- end }}
{{- if kindIs "map" $value }}
{{- range $inner := (get $owned $key | default list) }}
{{- if hasKey $value $inner }}
{{- fail (printf "config.%s.%s is set by the chart: use its own values (database.*, auth.* or a Secret for credentials, never the ConfigMap; containerPort for the port; workers)" $key $inner) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
values.config as TOML: top-level scalars first, then one table per section. Values are written as
JSON, whose strings, numbers, booleans and arrays are valid TOML; a null leaves the key out (the
broker's default).
*/}}
{{- define "brokkr-broker.toml" -}}
# Rendered by the brokkr-broker chart from values.config.
{{- range $key, $value := .Values.config }}
{{- if and (not (kindIs "map" $value)) (not (kindIs "invalid" $value)) }}
{{ $key }} = {{ toJson $value }}
{{- end }}
{{- end }}
{{- range $section, $table := .Values.config }}
{{- if kindIs "map" $table }}

[{{ $section }}]
{{- range $key, $value := $table }}
{{- if kindIs "map" $value }}
{{- fail (printf "config.%s.%s: the broker's settings are one level deep (section.key)" $section $key) }}
{{- end }}
{{- if not (kindIs "invalid" $value) }}
{{ $key }} = {{ toJson $value }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
