{{- define "hotfix-operator.labels" -}}
app.kubernetes.io/name: hotfix-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: hotfix-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hotfix-operator.selector" -}}
app.kubernetes.io/name: hotfix-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hotfix-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}
