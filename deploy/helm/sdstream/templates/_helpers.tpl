{{/* Names: <release>-sdstream unless the release name already says sdstream. */}}
{{- define "sdstream.fullname" -}}
{{- if contains "sdstream" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-sdstream" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "producer"). */}}
{{- define "sdstream.selectorLabels" -}}
app.kubernetes.io/name: sdstream
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sdstream.labels" -}}
{{ include "sdstream.selectorLabels" . }}
app.kubernetes.io/part-of: sdstream
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "sdstream.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{ $img.repository }}@{{ $img.digest }}
{{- else -}}
{{ $img.repository }}:{{ $img.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Kafka client settings of one principal, as YAML: (dict "root" $ "user" .kafkaUser). */}}
{{- define "sdstream.kafkaSettings" -}}
{{- $k := deepCopy .root.Values.kafka -}}
{{- $tls := has (default "PLAINTEXT" $k.security_protocol) (list "SSL" "SASL_SSL") -}}
{{- if and $k.min_insync_replicas (gt (int $k.min_insync_replicas) (int (default 1 $k.replication_factor))) -}}
{{- fail (printf "kafka.min_insync_replicas %v exceeds kafka.replication_factor %v: Kafka would refuse every write" $k.min_insync_replicas (default 1 $k.replication_factor)) -}}
{{- end -}}
{{- if and $tls .root.Values.kafkaCA.secretName -}}
{{- $_ := set $k "ssl_cafile" "/etc/sdstream/kafka-ca/ca.crt" -}}
{{- end -}}
{{- if and (hasPrefix "SASL" (default "" $k.security_protocol)) (not .user.username) -}}
{{- fail (printf "%s.kafkaUser.username (and passwordSecret) is required with kafka.security_protocol %s" .component $k.security_protocol) -}}
{{- end -}}
{{- if and (not (hasPrefix "SASL" (default "PLAINTEXT" $k.security_protocol))) (or $k.sasl_mechanism .user.username) -}}
{{- fail (printf "kafka.sasl_mechanism / %s.kafkaUser.username set but kafka.security_protocol %s sends no SASL credentials: use SASL_SSL, or set them to null" .component (default "PLAINTEXT" $k.security_protocol)) -}}
{{- end -}}
{{- if .user.username -}}
{{- $_ := set $k "sasl_username" .user.username -}}
{{- $_ := set $k "sasl_password_file" "/etc/sdstream/kafka-user/password" -}}
{{- end -}}
{{- if .user.certSecretName -}}
{{- $_ := set $k "ssl_certfile" "/etc/sdstream/kafka-cert/user.crt" -}}
{{- $_ := set $k "ssl_keyfile" "/etc/sdstream/kafka-cert/user.key" -}}
{{- end -}}
{{- toYaml $k -}}
{{- end -}}

{{/* Volumes for a principal's Kafka Secrets: (dict "root" $ "user" .kafkaUser). */}}
{{- define "sdstream.kafkaVolumes" -}}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
- name: config
  configMap:
    name: {{ .configMap }}
{{- if .root.Values.kafkaCA.secretName }}
- name: kafka-ca
  secret:
    secretName: {{ .root.Values.kafkaCA.secretName }}
    defaultMode: 0444
    items: [{key: {{ .root.Values.kafkaCA.key | quote }}, path: ca.crt}]
{{- end }}
{{- if .user.username }}
- name: kafka-user
  secret:
    secretName: {{ required "kafkaUser.passwordSecret.name is required with kafkaUser.username" .user.passwordSecret.name }}
    defaultMode: 0440
    items: [{key: {{ .user.passwordSecret.key | quote }}, path: password}]
{{- end }}
{{- if .user.certSecretName }}
- name: kafka-cert
  secret:
    secretName: {{ .user.certSecretName }}
    defaultMode: 0440
    items: [{key: user.crt, path: user.crt}, {key: user.key, path: user.key}]
{{- end }}
{{- end -}}

{{- define "sdstream.kafkaMounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: config, mountPath: /etc/sdstream/config, readOnly: true}
{{- if .root.Values.kafkaCA.secretName }}
- {name: kafka-ca, mountPath: /etc/sdstream/kafka-ca, readOnly: true}
{{- end }}
{{- if .user.username }}
- {name: kafka-user, mountPath: /etc/sdstream/kafka-user, readOnly: true}
{{- end }}
{{- if .user.certSecretName }}
- {name: kafka-cert, mountPath: /etc/sdstream/kafka-cert, readOnly: true}
{{- end }}
{{- end -}}

{{/* Pod-level hardening: one non-root UID everywhere, RuntimeDefault seccomp. */}}
{{- define "sdstream.podSecurity" -}}
enableServiceLinks: false
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.uid }}
  runAsGroup: {{ .Values.uid }}
  fsGroup: {{ .Values.uid }}
  seccompProfile: {type: RuntimeDefault}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "sdstream.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  privileged: false
  capabilities: {drop: [ALL]}
{{- end -}}

{{/* Probes on the named port `http`: (dict "scheme" "HTTP"). */}}
{{- define "sdstream.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: http, scheme: {{ .scheme }}}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http, scheme: {{ .scheme }}}
  periodSeconds: 5
  failureThreshold: 2
{{- end -}}

{{- define "sdstream.antiAffinity" -}}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "sdstream.selectorLabels" . | nindent 14 }}
{{- end -}}

{{/* The consumer config file of one half: (dict "root" $ "user" .kafkaUser "port" 8081 "web" bool). */}}
{{- define "sdstream.consumerConfig" -}}
{{- $c := deepCopy .root.Values.consumer.settings -}}
{{- $_ := set $c "kafka" (include "sdstream.kafkaSettings" . | fromYaml) -}}
{{- $http := dict "host" "0.0.0.0" "port" .port -}}
{{- if .web -}}
{{- $_ := set $http "web_config_file" (printf "/etc/sdstream/web/%s" .root.Values.serve.webConfig.key) -}}
{{- with .root.Values.serve.webConfig.bearerTokenKey -}}
{{- $_ := set $http "bearer_token_file" (printf "/etc/sdstream/web/%s" .) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $c "http" $http -}}
{{- if not (hasKey $c "own_namespace") -}}
{{- $_ := set $c "own_namespace" .root.Release.Namespace -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}


{{/* How Prometheus reaches a /metrics behind serve.webConfig: (dict "sm" .serviceMonitor
"tls" bool). The scheme follows serve.webConfig.tls unless set; TLS and credentials are
rendered only when set, and only ever name Secrets or ConfigMaps. */}}
{{- define "sdstream.scrapeSecurity" -}}
{{- $sm := .sm -}}
scheme: {{ $sm.scheme | default (ternary "https" "http" .tls) }}
{{- $tls := $sm.tlsConfig | default dict }}
{{- if or $tls.serverName $tls.insecureSkipVerify $tls.ca }}
tlsConfig:
  {{- with $tls.ca }}
  ca: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $tls.serverName }}
  serverName: {{ . | quote }}
  {{- end }}
  {{- if $tls.insecureSkipVerify }}
  insecureSkipVerify: true
  {{- end }}
{{- end }}
{{- with $sm.bearerTokenSecret }}
{{- if .name }}
authorization:
  type: Bearer
  credentials: {name: {{ .name | quote }}, key: {{ .key | default "token" | quote }}}
{{- end }}
{{- end }}
{{- with $sm.basicAuth }}
{{- if .username }}
basicAuth:
  username: {{- toYaml .username | nindent 4 }}
  password: {{- toYaml .password | nindent 4 }}
{{- end }}
{{- end }}
{{- end -}}
