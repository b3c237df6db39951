{{/* The release's full name, used for every object. */}}
{{- define "kubeplan.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubeplan.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubeplan.labels" -}}
{{ include "kubeplan.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kubeplan.serviceAccountName" -}}
{{- default (include "kubeplan.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "kubeplan.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* "true" when the state lives in PostgreSQL. */}}
{{- define "kubeplan.postgres" -}}
{{- if .Values.state.postgres.secretName }}true{{ end -}}
{{- end -}}

{{/* "true" when a cluster is reached through the pod's own ServiceAccount. */}}
{{- define "kubeplan.inCluster" -}}
{{- range .Values.clusters }}{{ if .inCluster }}true{{ end }}{{ end -}}
{{- end -}}

{{/* Mistakes the schema cannot express, refused with a message saying what to do. */}}
{{- define "kubeplan.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not (include "kubeplan.postgres" .)) -}}
{{- fail (printf "replicas: %d needs a shared PostgreSQL store, and the embedded SQLite file serves one replica only: set state.postgres.secretName to an existing Secret holding the postgres:// URL (under state.postgres.secretKey), or set replicas: 1" (int .Values.replicas)) -}}
{{- end -}}
{{- if and .Values.rbac.create (eq .Values.rbac.mode "namespaced") (empty .Values.rbac.namespaces) -}}
{{- fail "rbac.mode namespaced needs rbac.namespaces: the namespaces kubeplan may plan and apply in" -}}
{{- end -}}
{{- range $key := list "listen" "state" "clusters" "defaultCluster" -}}
{{- if hasKey $.Values.config $key -}}
{{- fail (printf "config.%s is set by the chart: use the top-level values (clusters, defaultCluster, state.postgres) instead" $key) -}}
{{- end -}}
{{- end -}}
{{- range $r := concat .Values.rbac.rules .Values.rbac.clusterRules -}}
{{- if or (has "*" $r.apiGroups) (has "*" $r.resources) -}}
{{- fail "rbac.rules and rbac.clusterRules name API groups and resources one by one: \"*\" would grant every kind, today's and future ones (use rbac.create: false and your own RBAC if you really mean it)" -}}
{{- end -}}
{{- end -}}
{{- $names := dict -}}
{{- range .Values.clusters -}}
{{- if hasKey $names .name -}}
{{- fail (printf "clusters: %q is listed twice" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- end -}}
{{- if and .Values.defaultCluster (not (hasKey $names .Values.defaultCluster)) -}}
{{- fail (printf "defaultCluster %q is not one of clusters" .Values.defaultCluster) -}}
{{- end -}}
{{- end -}}

{{/* kubeplan's configuration file: the config value plus the clusters the chart mounts. */}}
{{- define "kubeplan.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $clusters := list -}}
{{- range $i, $c := .Values.clusters -}}
{{- if $c.inCluster -}}
{{- $clusters = append $clusters (dict "name" $c.name "inCluster" true) -}}
{{- else -}}
{{- $t := dict "name" $c.name "kubeconfig" (printf "/etc/kubeplan/clusters/%d/kubeconfig" $i) -}}
{{- if $c.context }}{{ $_ := set $t "context" $c.context }}{{ end -}}
{{- $clusters = append $clusters $t -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "clusters" $clusters -}}
{{- if .Values.defaultCluster }}{{ $_ := set $cfg "defaultCluster" .Values.defaultCluster }}{{ end -}}
{{- toYaml $cfg -}}
{{- end -}}
