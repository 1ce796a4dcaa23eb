{{/*
Shared pieces of the bazaar templates: names, labels, the Secret's generated values, and the
pod spec every bazaar container shares (Deployments of both topologies and the migration Job).
*/}}

{{/* The <release>-<chart> prefix of every name, at most 63 characters. */}}
{{- define "bazaar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "bazaar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select one component's pods: dict "root" $ "component" NAME. */}}
{{- define "bazaar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bazaar.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every object's labels: dict "root" $ "component" NAME. */}}
{{- define "bazaar.labels" -}}
{{ include "bazaar.selectorLabels" . }}
app.kubernetes.io/part-of: bazaar
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "bazaar.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The service names, in `bazaar services` order (start-up order). */}}
{{- define "bazaar.serviceNames" -}}
users catalog orders notifications recommendations gateway
{{- end -}}

{{- define "bazaar.secretName" -}}
{{- default (include "bazaar.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "bazaar.configName" -}}
{{- printf "%s-config" (include "bazaar.fullname" .) -}}
{{- end -}}

{{/* The Service of one bazaar service in the split topology. */}}
{{- define "bazaar.serviceHost" -}}
{{- printf "%s-%s" (include "bazaar.fullname" .root) .service -}}
{{- end -}}

{{/*
A value of the chart's Secret: the one given, else the one already in the cluster's Secret
(so a generated value survives `helm upgrade`), else a new random one.
dict "root" $ "key" ENV_NAME "given" VALUE "length" N
*/}}
{{- define "bazaar.persistentSecret" -}}
{{- if .given -}}
{{- .given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "bazaar.fullname" .root) -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (int .length) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The pod template of a bazaar container.
dict "root" $ "component" NAME "args" LIST "resources" MAP "env" MAP "data" VOLUME-SOURCE
  "probes" BOOL "restartPolicy" STRING
*/}}
{{- define "bazaar.podTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "bazaar.labels" (dict "root" $root "component" .component) | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Roll the pods when their settings change.
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- if not $v.secrets.existingSecret }}
    # From the values, not the rendered Secret: a generated value is random at the first
    # install and read back afterwards, which must not roll the pods once more.
    checksum/secret: {{ pick $v "secrets" "database" "redis" "nats" "rabbitmq" "kafka" "broker" "services" | toJson | sha256sum }}
    {{- end }}
    {{- if and .probes $v.metrics.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: "8080"
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with .restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  automountServiceAccountToken: false
  {{- if .probes }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  {{- if and .probes $v.spreadOverNodes }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "bazaar.selectorLabels" (dict "root" $root "component" .component) | nindent 10 }}
  {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: bazaar
      image: {{ include "bazaar.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      {{- if .probes }}
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
      {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "bazaar.configName" $root }}
        - secretRef:
            name: {{ include "bazaar.secretName" $root }}
      {{- with .env }}
      env:
        {{- range $name, $value := . }}
        - name: {{ $name }}
          value: {{ $value | toString | quote }}
        {{- end }}
      {{- end }}
      {{- if .probes }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: {{ $v.probes.startup.periodSeconds }}
        failureThreshold: {{ $v.probes.startup.failureThreshold }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: {{ $v.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $v.probes.liveness.failureThreshold }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: {{ $v.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $v.probes.readiness.failureThreshold }}
      {{- if $v.preStopSleepSeconds }}
      lifecycle:
        # Let endpoints drop this pod before it stops accepting connections.
        preStop:
          exec:
            command: ["sleep", {{ $v.preStopSleepSeconds | toString | quote }}]
      {{- end }}
      {{- end }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      volumeMounts:
        - name: data
          mountPath: /data
        - name: tmp
          mountPath: /tmp
        {{- if $v.tls.secretName }}
        - name: tls
          mountPath: {{ $v.tls.mountPath }}
          readOnly: true
        {{- end }}
  volumes:
    - name: data
      {{- toYaml .data | nindent 6 }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $v.tls.secretName }}
    - name: tls
      secret:
        secretName: {{ $v.tls.secretName }}
        defaultMode: 0440
    {{- end }}
{{- end -}}
