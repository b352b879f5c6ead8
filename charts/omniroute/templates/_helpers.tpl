{{/*
The chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "omniroute.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: the release name, with the chart name unless the release name already contains it.
*/}}
{{- define "omniroute.fullname" -}}
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
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "omniroute.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "omniroute.labels" -}}
helm.sh/chart: {{ include "omniroute.chart" . }}
{{ include "omniroute.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the daemon's pods.
*/}}
{{- define "omniroute.selectorLabels" -}}
app.kubernetes.io/name: {{ include "omniroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of the helm test pod: never the selector labels, which the Deployment's ReplicaSet
would adopt it by.
*/}}
{{- define "omniroute.testLabels" -}}
helm.sh/chart: {{ include "omniroute.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The ServiceAccount name.
*/}}
{{- define "omniroute.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "omniroute.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository with the digest when set, else the tag (default appVersion).
*/}}
{{- define "omniroute.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The Lease the replicas compete for: leaderElection.leaseName, or the full name.
*/}}
{{- define "omniroute.leaseName" -}}
{{- default (include "omniroute.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The Secret holding the credentials: existingSecret, or the chart's own.
*/}}
{{- define "omniroute.secretName" -}}
{{- default (include "omniroute.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
The ConfigMap holding the mapping: mapping.existingConfigMap, or the chart's own.
*/}}
{{- define "omniroute.mappingConfigMapName" -}}
{{- default (printf "%s-mapping" (include "omniroute.fullname" .)) .Values.mapping.existingConfigMap }}
{{- end }}

{{/*
The PromQL label matchers selecting this release's series, as the ServiceMonitor scrapes them
(job is the Service name).
*/}}
{{- define "omniroute.promSelector" -}}
namespace="{{ .Release.Namespace }}", job="{{ include "omniroute.fullname" . }}"
{{- end }}

{{/*
Checks that fail the render instead of deploying something that cannot work.
*/}}
{{- define "omniroute.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount above 1 needs leaderElection.enabled: without it every replica would route and write" }}
{{- end }}
{{- if not .Values.salesforce.clientId }}
{{- fail "salesforce.clientId is required: the connected app's consumer key" }}
{{- end }}
{{- if and (not .Values.mapping.content) (not .Values.mapping.existingConfigMap) }}
{{- fail "mapping.content or mapping.existingConfigMap is required: the mapping file (docs/mapping.md)" }}
{{- end }}
{{- if and (has .Values.salesforce.auth (list "jwt" "password")) (not .Values.salesforce.username) }}
{{- fail (printf "salesforce.auth %s needs salesforce.username: the integration user the daemon acts as" .Values.salesforce.auth) }}
{{- end }}
{{- if and .Values.ingress.enabled (or (not .Values.ingress.hosts) (not .Values.ingress.paths)) }}
{{- fail "ingress.enabled needs ingress.hosts and ingress.paths: an Ingress without rules is refused by the API server" }}
{{- end }}
{{- if not .Values.existingSecret }}
{{- if and (eq .Values.salesforce.auth "jwt") (not .Values.salesforce.privateKey) }}
{{- fail "salesforce.auth jwt needs salesforce.privateKey, or existingSecret with a private-key.pem key" }}
{{- end }}
{{- if and (ne .Values.salesforce.auth "jwt") (not .Values.salesforce.clientSecret) }}
{{- fail (printf "salesforce.auth %s needs salesforce.clientSecret, or existingSecret with a client-secret key" .Values.salesforce.auth) }}
{{- end }}
{{- if and (eq .Values.salesforce.auth "password") (not .Values.salesforce.password) }}
{{- fail "salesforce.auth password needs salesforce.password, or existingSecret with a password key" }}
{{- end }}
{{- end }}
{{- end }}
