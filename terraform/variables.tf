# Every variable's checks are in validation.tf, one table per kind of check.

# ---------------------------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project id to deploy into."
  type        = string
}

variable "region" {
  description = "Region for the functions, the source bucket and (unless firestore_location is set) Firestore."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (topics become <prefix>-kubernetes, functions <prefix>-webhook, ...)."
  type        = string
  default     = "khook"
}

variable "labels" {
  description = "Extra labels for every resource that takes labels."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Sources and functions
# ---------------------------------------------------------------------------------------------

variable "sources" {
  description = "Event sources to deploy. Bridged through Pub/Sub: kubernetes, kafka, cdc, gcp (Cloud Monitoring incidents and Cloud Build, see gcp.tf). Called over HTTP: alertmanager, webhook. The sweep function is not a source: sweep_schedule controls it."
  type        = set(string)
  default     = ["kubernetes", "alertmanager", "webhook", "kafka", "cdc"]
}

variable "source_archive_dir" {
  description = "Directory holding the <source>.zip archives built by `make package`. Default: build/functions next to this directory."
  type        = string
  default     = null
}

variable "min_instances" {
  description = "Instances kept warm for each function. 0 scales to zero (cheapest, cold starts); 1 removes most cold starts but is billed while idle."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Upper bound of instances for each function; caps cost and the request rate towards the agent."
  type        = number
  default     = 10
}

variable "function_memory" {
  description = "Memory of each function instance. CPU-bound start-up gets faster with more CPU, see function_cpu."
  type        = string
  default     = "512Mi"
}

variable "function_cpu" {
  description = "vCPUs of each function instance (\"0.333\", \"1\", \"2\", ...). Below 1, request concurrency must be 1."
  type        = string
  default     = "1"
}

variable "max_request_concurrency" {
  description = "Requests one instance handles at the same time. 1 is the safe default; higher values need function_cpu >= 1."
  type        = number
  default     = 1
}

variable "dedup_window_seconds" {
  description = "How long a fired hook suppresses the same event type on the same resource (KHOOK_DEDUP_WINDOW, seconds)."
  type        = number
  default     = 600
}

# ---------------------------------------------------------------------------------------------
# Agent
# ---------------------------------------------------------------------------------------------

variable "kagent_api_url" {
  description = "Base URL of the kagent controller API (KAGENT_API_URL), e.g. https://kagent.example.com, or http://10.10.0.20:8083 for an internal load balancer reached through vpc_connector; agents are called at <url>/api/a2a/<namespace>/<name>/. Not a cluster DNS name (*.svc.cluster.local): functions run outside the cluster."
  type        = string
}

variable "kagent_user_id" {
  description = "User id sent to kagent in X-User-Id (KAGENT_USER_ID)."
  type        = string
  default     = "admin@kagent.dev"
}

# ---------------------------------------------------------------------------------------------
# Network: reaching an agent inside a VPC (kagent in a GKE cluster)
# ---------------------------------------------------------------------------------------------

variable "vpc_connector" {
  description = "Serverless VPC Access connector every function sends its outbound traffic through, as projects/PROJECT/locations/REGION/connectors/NAME (same region as the functions; PROJECT may be a Shared VPC host). Needed when kagent_api_url is an internal address, such as an internal load balancer in front of an in-cluster kagent. null: no VPC access, the agent must be reachable over the internet."
  type        = string
  default     = null
}

variable "vpc_egress" {
  description = "Which outbound traffic goes through vpc_connector (ignored without one). PRIVATE_RANGES_ONLY: only RFC 1918 and other private destinations, enough for an internal load balancer; Google APIs and public agents are reached directly. ALL_TRAFFIC: everything, which then needs Cloud NAT for public destinations."
  type        = string
  default     = "PRIVATE_RANGES_ONLY"
  nullable    = false
}

# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------

variable "secrets" {
  description = <<-EOT
    Secret values keyed by the environment variable that carries them:
    KHOOK_WEBHOOK_HMAC_SECRET and/or KHOOK_WEBHOOK_TOKEN (webhook authentication),
    KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET (whsec_ key of auth: standard-webhooks endpoints),
    KHOOK_WEBHOOK_PAGERDUTY_SECRET (PagerDuty v3 subscription secret, auth: pagerduty),
    KHOOK_ALERTMANAGER_TOKEN (bearer token Alertmanager sends), KHOOK_A2A_TOKEN (bearer token
    for the agent), KHOOK_CONSOLE_TOKEN (optional second lock on the console, behind its IAM),
    KHOOK_GITHUB_TOKEN (token the sweep and tasks functions comment findings with, report: github),
    KHOOK_PAGERDUTY_TOKEN (REST API token the sweep and tasks functions add incident notes with,
    report: pagerduty),
    KHOOK_REDACTION_KEY (key of the [redacted:KIND:HASH8] masks, one for every function; unset,
    each instance uses a random key of its own). Each becomes a Secret Manager secret
    <prefix>-<name> injected only into the
    functions that use it. Values end up in the Terraform state: keep the state in a protected bucket.
  EOT
  type        = map(string)
  default     = {}
  sensitive   = true
}

# ---------------------------------------------------------------------------------------------
# HTTP endpoints
# ---------------------------------------------------------------------------------------------

variable "alertmanager_public" {
  description = "Let anyone reach the alertmanager function (it then requires the KHOOK_ALERTMANAGER_TOKEN bearer token). false: only http_invokers, with Google ID tokens."
  type        = bool
  default     = true
}

variable "console_viewers" {
  description = "Principals allowed to read the console (query API and dashboard) and decide approvals there, e.g. group:sre@example.com; they get roles/run.invoker on the console function only. Empty: the console is not deployed. Browse it with `gcloud run services proxy <prefix>-console`."
  type        = set(string)
  default     = []
}

variable "http_invokers" {
  description = "Principals allowed to call the HTTP functions with a Google-signed ID token, e.g. serviceAccount:alertmanager@my-project.iam.gserviceaccount.com."
  type        = set(string)
  default     = []
}

# ---------------------------------------------------------------------------------------------
# Pub/Sub
# ---------------------------------------------------------------------------------------------

variable "topic_retention" {
  description = "How long each source topic keeps messages, acknowledged or not, so a subscription can be replayed with `gcloud pubsub subscriptions seek`."
  type        = string
  default     = "86400s"
}

variable "dead_letter_retention" {
  description = "How long undeliverable messages wait in the dead-letter hold subscription for inspection or replay."
  type        = string
  default     = "604800s"
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before it goes to the dead-letter topic."
  type        = number
  default     = 10
}

variable "topic_publishers" {
  description = "Extra principals allowed to publish to a bridged topic, keyed by source, e.g. { kafka = [\"serviceAccount:kafka-connect@P.iam.gserviceaccount.com\"] }. The forwarder is granted kubernetes already."
  type        = map(set(string))
  default     = {}
}

variable "grant_pubsub_token_creator" {
  description = "Grant the Pub/Sub service agent roles/iam.serviceAccountTokenCreator on the push identity. Needed only in projects whose Pub/Sub service agent was created on or before 2021-04-08."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Sweep (storm control)
# ---------------------------------------------------------------------------------------------

variable "sweep_schedule" {
  description = "Cron schedule (5 fields, Cloud Scheduler's unix-cron format) of the sweep that gives held-back events of storm control their agent run once their group went quiet. Each tick is one invocation of the sweep function. \"\" removes the sweep function and its scheduler job: held-back events then wait for their group's next event."
  type        = string
  default     = "* * * * *"
}

variable "sweep_time_zone" {
  description = "Time zone (tz database name) in which sweep_schedule is read; matters only for schedules that name hours or days."
  type        = string
  default     = "Etc/UTC"
}

# ---------------------------------------------------------------------------------------------
# Firestore
# ---------------------------------------------------------------------------------------------

variable "create_firestore_database" {
  description = "Create the (default) Firestore database in Native mode. Set false when the project already has one (it must be Native mode)."
  type        = bool
  default     = true
}

variable "firestore_trim_audit" {
  description = "Delete audit records (collection firings, and their per-minute counters firing_counts) 90 days after they were written, through a TTL policy. Off keeps the audit trail forever."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Location of the Firestore database (a region such as europe-west1, or a multi-region such as eur3). Default: region."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# In-cluster forwarder (kubernetes source)
# ---------------------------------------------------------------------------------------------

variable "forwarder_namespace" {
  description = "Kubernetes namespace the forwarder runs in."
  type        = string
  default     = "khook"
}

variable "forwarder_service_account" {
  description = "Kubernetes service account of the forwarder; it is bound to the forwarder's Google service account."
  type        = string
  default     = "khook-forwarder"
}

variable "forwarder_cluster_hooks" {
  description = "The forwarder publishes the cluster's Hooks as the live configuration and writes their status (KHOOK_FORWARDER_HOOKS_STATE=firestore): grants its Google service account roles/datastore.user. Default false: it only publishes Events."
  type        = bool
  default     = false
}

variable "workload_identity_pool" {
  description = "GKE Workload Identity pool of the cluster running the forwarder. Default: <project_id>.svc.id.goog (the cluster lives in this project)."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Google Cloud alerting (the gcp source, gcp.tf)
# ---------------------------------------------------------------------------------------------

variable "create_cloud_builds_topic" {
  description = "Create the cloud-builds topic Cloud Build publishes its status messages to. Set false when the project has it already (enabling the Cloud Build API may create it); the gcp source subscribes to it either way."
  type        = bool
  default     = true
}

variable "monitoring_notification_channel" {
  description = "Create a Cloud Monitoring notification channel of type pubsub on the gcp source's topic; add it to alert policies (output monitoring_notification_channel). False: create the channel yourself (docs/sources.md)."
  type        = bool
  default     = true
}

variable "task_push_notifications" {
  description = "Deploy functions/tasks and give agents that advertise A2A push notifications its URL, so their tasks are reported instead of polled by the sweep. Public: each notification carries its task's own token."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Telemetry and alerts (monitoring.tf)
# ---------------------------------------------------------------------------------------------

variable "telemetry" {
  description = "KHOOK_TELEMETRY of every function: \"gcp\" exports traces to Cloud Trace and khook.* metrics to Cloud Monitoring (through the cloud extra's exporters, which `make package` puts in every archive); \"off\" exports nothing, and the dispatch-failure and circuit alerts then have no data."
  type        = string
  default     = "off"
}

variable "alert_channels" {
  description = "Notification channel ids (projects/P/notificationChannels/N) every khook alert policy notifies; empty: the incidents show in the console only."
  type        = list(string)
  default     = []
}

variable "alert_failure_ratio" {
  description = "Share of dispatches (over 10 minutes) that may fail before the dispatch-failure alert opens."
  type        = number
  default     = 0.2
}

variable "alert_silence_seconds" {
  description = "Seconds without a message published to the kubernetes topic before the forwarder-not-publishing alert opens. The forwarder publishes only events a hook may want: set this above the quietest interval of your clusters."
  type        = number
  default     = 3600
}
