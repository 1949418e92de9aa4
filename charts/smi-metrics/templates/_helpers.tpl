{{/* Names ---------------------------------------------------------------- */}}

{{- define "smi-metrics.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Service name too, so a DNS-1035 label of at most 63 characters. */}}
{{- define "smi-metrics.fullname" -}}
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

{{- define "smi-metrics.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smi-metrics.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "smi-metrics.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smi-metrics.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "smi-metrics.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "smi-metrics.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: metrics-apiserver
app.kubernetes.io/managed-by: {{ .Release.Service }}
smi-metrics.io/adapter: {{ .Values.adapter }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "smi-metrics.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Adapters ------------------------------------------------------------- */}}

{{/*
What the chart knows about each adapter, as YAML:
  prometheusUrl    the mesh's standard Prometheus (default of prometheus.url)
  manifestsOption, manifestsWhen, optionDefault
                   the adapter-owned manifests (files/adapters/<name>/, a
                   symlink to adapters/<name>/manifests/) are shipped only when
                   adapterOptions[manifestsOption] (default optionDefault)
                   equals manifestsWhen; without manifestsOption they are
                   shipped whenever the adapter is selected.
values.schema.json rejects other adapter names first; the fail below is for
--skip-schema-validation.
*/}}
{{- define "smi-metrics.adapterInfo" -}}
{{- $table := dict
  "linkerd" (dict "prometheusUrl" "http://prometheus.linkerd-viz.svc.cluster.local:9090")
  "istio" (dict "prometheusUrl" "http://prometheus.istio-system.svc.cluster.local:9090"
                "manifestsOption" "mode" "manifestsWhen" "mixer" "optionDefault" "telemetry-v2") }}
{{- $info := get $table (toString .Values.adapter) }}
{{- if not $info }}
{{- fail (printf "adapter %q is not supported by this chart: set adapter=linkerd or adapter=istio" (toString .Values.adapter)) }}
{{- end }}
{{- toYaml $info }}
{{- end }}

{{/* "true" when the selected adapter's manifests are to be shipped. */}}
{{- define "smi-metrics.shipAdapterManifests" -}}
{{- $info := include "smi-metrics.adapterInfo" . | fromYaml }}
{{- if $info.manifestsOption }}
{{- $value := get (.Values.adapterOptions | default dict) $info.manifestsOption | default $info.optionDefault }}
{{- if eq (toString $value) $info.manifestsWhen }}true{{ end }}
{{- else }}true{{ end }}
{{- end }}

{{- define "smi-metrics.prometheusUrl" -}}
{{- $info := include "smi-metrics.adapterInfo" . | fromYaml }}
{{- default $info.prometheusUrl .Values.prometheus.url }}
{{- end }}

{{/* TCP port of prometheus.url (explicit, else 80/443 by scheme). */}}
{{- define "smi-metrics.prometheusPort" -}}
{{- $url := include "smi-metrics.prometheusUrl" . }}
{{- $host := (urlParse $url).host }}
{{- $port := regexFind ":[0-9]+$" $host | trimPrefix ":" }}
{{- if $port }}{{ $port }}{{ else if hasPrefix "https:" $url }}443{{ else }}80{{ end }}
{{- end }}

{{/* Front-proxy (requestheader) trust --------------------------------------

Returns YAML {ca: PEM, allowedNames: [...], source: text}.

TODO(auth issue): once the server reads kube-system/extension-apiserver-
authentication itself through the API (and re-reads it when the
kube-apiserver rotates the front-proxy CA), drop this helper, the ConfigMap
key requestheader-client-ca.crt and the auth.* values; the RoleBinding to
extension-apiserver-authentication-reader in rbac.yaml is already there for
it.  Until then the CA reaches the pod through our own ConfigMap: a pod can
only mount ConfigMaps of its own namespace, so the kube-system one cannot be
mounted (nor projected) directly, and an init container would need a client
(kubectl/curl + a JSON parser) in the image.  `lookup` runs with the rights
of whoever runs helm install/upgrade, so an upgrade also picks up a rotated
front-proxy CA.
*/}}
{{- define "smi-metrics.frontProxy" -}}
{{- $ca := .Values.auth.requestheaderClientCA | default "" }}
{{- $names := .Values.auth.requestheaderAllowedNames }}
{{- $source := "auth.requestheaderClientCA" }}
{{- if or (not $ca) (kindIs "invalid" $names) }}
{{- $cm := lookup "v1" "ConfigMap" "kube-system" "extension-apiserver-authentication" | default dict }}
{{- $data := get $cm "data" | default dict }}
{{- if not $ca }}
{{- $ca = get $data "requestheader-client-ca-file" | default "" }}
{{- $source = "kube-system/extension-apiserver-authentication" }}
{{- end }}
{{- if kindIs "invalid" $names }}
{{- if $cm }}
{{- $raw := get $data "requestheader-allowed-names" | default "[]" }}
{{- $names = fromJsonArray $raw }}
{{- else }}
{{- $names = list "front-proxy-client" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (not $ca) (eq $source "kube-system/extension-apiserver-authentication") (lookup "v1" "ConfigMap" "kube-system" "extension-apiserver-authentication") }}
{{- fail "kube-system/extension-apiserver-authentication has no requestheader-client-ca-file: the kube-apiserver runs without --requestheader-client-ca-file, so the aggregation layer is not configured (see https://kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer/)" }}
{{- end }}
{{- if not $ca }}
{{- fail "auth.requestheaderClientCA is empty and the ConfigMap kube-system/extension-apiserver-authentication could not be read (helm template, --dry-run, or no rights to read it), so the front-proxy CA is unknown. Pass it: kubectl -n kube-system get configmap extension-apiserver-authentication -o jsonpath='{.data.requestheader-client-ca-file}' > front-proxy-ca.pem; then add --set-file auth.requestheaderClientCA=front-proxy-ca.pem" }}
{{- end }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" $ca) }}
{{- fail (printf "%s does not contain a PEM certificate (-----BEGIN CERTIFICATE-----)" $source) }}
{{- end }}
{{- toYaml (dict "ca" $ca "allowedNames" $names "source" $source) }}
{{- end }}

{{/* TLS ------------------------------------------------------------------ */}}

{{/* DNS names of the serving certificate, as a YAML list; the first is the
name the aggregator verifies (<svc>.<ns>.svc). */}}
{{- define "smi-metrics.dnsNames" -}}
{{- $svc := include "smi-metrics.fullname" . }}
{{- $ns := .Release.Namespace }}
- {{ printf "%s.%s.svc" $svc $ns }}
- {{ printf "%s.%s" $svc $ns }}
- {{ printf "%s.%s.svc.%s" $svc $ns .Values.tls.clusterDomain }}
{{- end }}

{{/* The Secret the pod mounts (tls.crt, tls.key). */}}
{{- define "smi-metrics.tlsSecretName" -}}
{{- $fullname := include "smi-metrics.fullname" . }}
{{- if eq .Values.tls.mode "helm" }}
{{- printf "%s-tls" $fullname }}
{{- else if eq .Values.tls.mode "cert-manager" }}
{{- printf "%s-serving-cert" $fullname }}
{{- else }}
{{- required "tls.existingSecret.name is required with tls.mode=existingSecret" .Values.tls.existingSecret.name }}
{{- end }}
{{- end }}

{{/* Paths inside the container. */}}
{{- define "smi-metrics.configDir" -}}/etc/smi-metrics/config{{- end }}
{{- define "smi-metrics.tlsDir" -}}/etc/smi-metrics/tls{{- end }}
