{{- define "tocsin.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tocsin.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tocsin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tocsin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tocsin
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "service" "ingest"). */}}
{{- define "tocsin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tocsin.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "tocsin.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "tocsin.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "tocsin.fullname" .)) -}}
{{- end -}}

{{- define "tocsin.configMapName" -}}
{{- .Values.existingConfigMap | default (printf "%s-config" (include "tocsin.fullname" .)) -}}
{{- end -}}

{{/* The environment of every Tocsin container (services and the init job). */}}
{{- define "tocsin.env" -}}
- name: TOCSIN_KAFKA_BOOTSTRAP
  value: {{ required "kafka.bootstrap is required (the Kafka bootstrap servers)" .Values.kafka.bootstrap | quote }}
- name: TOCSIN_KAFKA_NAMESPACE
  value: {{ .Values.kafka.namespace | quote }}
- name: TOCSIN_KAFKA_PARTITIONS
  value: {{ .Values.kafka.topics.partitions | quote }}
- name: TOCSIN_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.topics.replicationFactor | quote }}
- name: TOCSIN_KAFKA_MIN_INSYNC_REPLICAS
  value: {{ .Values.kafka.topics.minInsyncReplicas | quote }}
- name: TOCSIN_KAFKA_RETENTION_HOURS
  value: {{ .Values.kafka.topics.retentionHours | default 168 | quote }}
{{- with .Values.kafka.security }}
- name: TOCSIN_KAFKA_SECURITY_PROTOCOL
  value: {{ .protocol | default "PLAINTEXT" | quote }}
- name: TOCSIN_KAFKA_SASL_MECHANISM
  value: {{ .saslMechanism | default "PLAIN" | quote }}
{{- with .saslUsername }}
- name: TOCSIN_KAFKA_SASL_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- if and .saslPasswordSecret .saslPasswordSecret.name }}
- name: TOCSIN_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .saslPasswordSecret.name | quote }}
      key: {{ .saslPasswordSecret.key | default "password" | quote }}
{{- end }}
{{- if and .caSecret .caSecret.name }}
- name: TOCSIN_KAFKA_SSL_CAFILE
  value: /etc/tocsin-kafka-ca/ca.crt
{{- end }}
{{- end }}
- name: TOCSIN_MONGO_DATABASE
  value: {{ .Values.mongodb.database | quote }}
- name: TOCSIN_CONFIG
  value: /etc/tocsin/tocsin.yaml
- name: TOCSIN_HOST
  value: "0.0.0.0"
{{- with .Values.publicUrl }}
- name: TOCSIN_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tocsin.envFrom" -}}
- secretRef:
    name: {{ include "tocsin.secretName" . }}
{{- end -}}


{{/* The Kafka CA bundle (kafka.security.caSecret), mounted at /etc/tocsin-kafka-ca/ca.crt. */}}
{{- define "tocsin.kafkaCaMount" -}}
{{- if and .Values.kafka.security .Values.kafka.security.caSecret .Values.kafka.security.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/tocsin-kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "tocsin.kafkaCaVolume" -}}
{{- if and .Values.kafka.security .Values.kafka.security.caSecret .Values.kafka.security.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.security.caSecret.name | quote }}
    items:
      - key: {{ .Values.kafka.security.caSecret.key | default "ca.crt" | quote }}
        path: ca.crt
{{- end }}
{{- end -}}
