# ---------------------------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project id to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6-30 characters: lowercase letters, digits, hyphens), not a project name or number."
  }
}

variable "region" {
  description = "Region for the functions, the source bucket and (unless firestore_location is set) Firestore."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (topics become <prefix>-kubernetes, functions <prefix>-webhook, ...)."
  type        = string
  default     = "khook"

  validation {
    # Service account ids are limited to 30 characters; the longest is <prefix>-fn-alertmanager.
    condition     = can(regex("^[a-z][a-z0-9-]{1,12}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-14 characters: a lowercase letter first, then lowercase letters, digits or hyphens, not ending with a hyphen."
  }
}

variable "labels" {
  description = "Extra labels for every resource that takes labels."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "Label keys must start with a lowercase letter; keys and values may contain only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}

# ---------------------------------------------------------------------------------------------
# Sources and functions
# ---------------------------------------------------------------------------------------------

variable "sources" {
  description = "Event sources to deploy. Bridged through Pub/Sub: kubernetes, kafka, cdc, gcp (Cloud Monitoring incidents and Cloud Build, see gcp.tf). Called over HTTP: alertmanager, webhook. The sweep function is not a source: sweep_schedule controls it."
  type        = set(string)
  default     = ["kubernetes", "alertmanager", "webhook", "kafka", "cdc"]

  validation {
    condition     = length(var.sources) > 0 && alltrue([for s in var.sources : contains(["kubernetes", "alertmanager", "webhook", "kafka", "cdc", "gcp"], s)])
    error_message = "sources must be a non-empty subset of kubernetes, alertmanager, webhook, kafka, cdc, gcp."
  }
}

variable "source_archive_dir" {
  description = "Directory holding the <source>.zip archives built by `make package`. Default: build/functions next to this directory."
  type        = string
  default     = null

  validation {
    condition     = var.source_archive_dir == null || try(length(trimspace(var.source_archive_dir)) > 0, false)
    error_message = "source_archive_dir must be a non-empty path or null."
  }
}

variable "min_instances" {
  description = "Instances kept warm for each function. 0 scales to zero (cheapest, cold starts); 1 removes most cold starts but is billed while idle."
  type        = number
  default     = 0

  validation {
    condition     = var.min_instances >= 0 && var.min_instances <= 100 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number from 0 to 100."
  }
}

variable "max_instances" {
  description = "Upper bound of instances for each function; caps cost and the request rate towards the agent."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 1000 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number from 1 to 1000."
  }
}

variable "function_memory" {
  description = "Memory of each function instance. CPU-bound start-up gets faster with more CPU, see function_cpu."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(M|Mi|G|Gi)$", var.function_memory))
    error_message = "function_memory must look like 256M, 512Mi or 1Gi."
  }
}

variable "function_cpu" {
  description = "vCPUs of each function instance (\"0.333\", \"1\", \"2\", ...). Below 1, request concurrency must be 1."
  type        = string
  default     = "1"

  validation {
    condition     = can(tonumber(var.function_cpu)) && try(tonumber(var.function_cpu) > 0 && tonumber(var.function_cpu) <= 8, false)
    error_message = "function_cpu must be a number of vCPUs greater than 0 and at most 8."
  }
}

variable "max_request_concurrency" {
  description = "Requests one instance handles at the same time. 1 is the safe default; higher values need function_cpu >= 1."
  type        = number
  default     = 1

  validation {
    condition     = var.max_request_concurrency >= 1 && var.max_request_concurrency <= 1000 && floor(var.max_request_concurrency) == var.max_request_concurrency
    error_message = "max_request_concurrency must be a whole number from 1 to 1000."
  }
}

variable "dedup_window_seconds" {
  description = "How long a fired hook suppresses the same event type on the same resource (KHOOK_DEDUP_WINDOW, seconds)."
  type        = number
  default     = 600

  validation {
    condition     = var.dedup_window_seconds >= 1 && var.dedup_window_seconds <= 604800 && floor(var.dedup_window_seconds) == var.dedup_window_seconds
    error_message = "dedup_window_seconds must be a whole number of seconds from 1 to 604800 (7 days)."
  }
}

# ---------------------------------------------------------------------------------------------
# Agent
# ---------------------------------------------------------------------------------------------

variable "kagent_api_url" {
  description = "Base URL of the kagent controller API (KAGENT_API_URL), e.g. https://kagent.example.com, or http://10.10.0.20:8083 for an internal load balancer reached through vpc_connector; agents are called at <url>/api/a2a/<namespace>/<name>/. Not a cluster DNS name (*.svc.cluster.local): functions run outside the cluster."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/\\s]+(/\\S*)?$", var.kagent_api_url))
    error_message = "kagent_api_url must be an http:// or https:// URL."
  }

  validation {
    # Cluster DNS names resolve only inside the cluster, never from a Cloud Run function.
    condition     = !can(regex("(?i)^https?://[^/:]*\\.(svc|cluster\\.local)\\.?(:[0-9]+)?(/|$)", var.kagent_api_url))
    error_message = "kagent_api_url names a cluster-internal Service (.svc, .cluster.local), which functions cannot resolve: expose kagent through an internal load balancer or Gateway, use its address here and set vpc_connector (docs/deployment.md, \"Reaching a kagent inside GKE\")."
  }
}

variable "kagent_user_id" {
  description = "User id sent to kagent in X-User-Id (KAGENT_USER_ID)."
  type        = string
  default     = "admin@kagent.dev"

  validation {
    condition     = length(trimspace(var.kagent_user_id)) > 0 && length(var.kagent_user_id) <= 256
    error_message = "kagent_user_id must be a non-empty string of at most 256 characters."
  }
}

# ---------------------------------------------------------------------------------------------
# Network: reaching an agent inside a VPC (kagent in a GKE cluster)
# ---------------------------------------------------------------------------------------------

variable "vpc_connector" {
  description = "Serverless VPC Access connector every function sends its outbound traffic through, as projects/PROJECT/locations/REGION/connectors/NAME (same region as the functions; PROJECT may be a Shared VPC host). Needed when kagent_api_url is an internal address, such as an internal load balancer in front of an in-cluster kagent. null: no VPC access, the agent must be reachable over the internet."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_connector == null || can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/locations/[a-z]+-[a-z]+[0-9]+/connectors/[a-z][-a-z0-9]{0,23}[a-z0-9]$", var.vpc_connector))
    error_message = "vpc_connector must be null or projects/PROJECT_ID/locations/REGION/connectors/NAME (NAME: 2-25 lowercase letters, digits or hyphens, starting with a letter)."
  }
}

variable "vpc_egress" {
  description = "Which outbound traffic goes through vpc_connector (ignored without one). PRIVATE_RANGES_ONLY: only RFC 1918 and other private destinations, enough for an internal load balancer; Google APIs and public agents are reached directly. ALL_TRAFFIC: everything, which then needs Cloud NAT for public destinations."
  type        = string
  default     = "PRIVATE_RANGES_ONLY"
  nullable    = false

  validation {
    condition     = contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], var.vpc_egress)
    error_message = "vpc_egress must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
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
    for the agent). Each becomes a Secret Manager secret <prefix>-<name> injected only into the
    functions that use it. Values end up in the Terraform state: keep the state in a protected bucket.
  EOT
  type        = map(string)
  default     = {}
  sensitive   = true

  validation {
    condition = alltrue([
      # The agent token is issued elsewhere; the inbound ones are ours to make long.
      for k, v in var.secrets : (
        contains(["KHOOK_ALERTMANAGER_TOKEN", "KHOOK_WEBHOOK_TOKEN", "KHOOK_WEBHOOK_HMAC_SECRET", "KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET", "KHOOK_WEBHOOK_PAGERDUTY_SECRET", "KHOOK_A2A_TOKEN"], k)
        && length(v) >= (k == "KHOOK_A2A_TOKEN" ? 1 : 16)
      )
    ])
    error_message = "secrets keys must be KHOOK_ALERTMANAGER_TOKEN, KHOOK_WEBHOOK_TOKEN, KHOOK_WEBHOOK_HMAC_SECRET, KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET, KHOOK_WEBHOOK_PAGERDUTY_SECRET or KHOOK_A2A_TOKEN; the inbound tokens and the signing secrets need at least 16 characters."
  }
}

# ---------------------------------------------------------------------------------------------
# HTTP endpoints
# ---------------------------------------------------------------------------------------------

variable "alertmanager_public" {
  description = "Let anyone reach the alertmanager function (it then requires the KHOOK_ALERTMANAGER_TOKEN bearer token). false: only http_invokers, with Google ID tokens."
  type        = bool
  default     = true
}

variable "http_invokers" {
  description = "Principals allowed to call the HTTP functions with a Google-signed ID token, e.g. serviceAccount:alertmanager@my-project.iam.gserviceaccount.com."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.http_invokers : can(regex("^(serviceAccount|user|group|domain|principal|principalSet):.+$", m))])
    error_message = "http_invokers entries must be IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (allUsers is controlled by alertmanager_public)."
  }
}

# ---------------------------------------------------------------------------------------------
# Pub/Sub
# ---------------------------------------------------------------------------------------------

variable "topic_retention" {
  description = "How long each source topic keeps messages, acknowledged or not, so a subscription can be replayed with `gcloud pubsub subscriptions seek`."
  type        = string
  default     = "86400s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.topic_retention)) && try(tonumber(trimsuffix(var.topic_retention, "s")) >= 600 && tonumber(trimsuffix(var.topic_retention, "s")) <= 2678400, false)
    error_message = "topic_retention must be seconds with an s suffix, from 600s (10 minutes) to 2678400s (31 days)."
  }
}

variable "dead_letter_retention" {
  description = "How long undeliverable messages wait in the dead-letter hold subscription for inspection or replay."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention)) && try(tonumber(trimsuffix(var.dead_letter_retention, "s")) >= 600 && tonumber(trimsuffix(var.dead_letter_retention, "s")) <= 2678400, false)
    error_message = "dead_letter_retention must be seconds with an s suffix, from 600s (10 minutes) to 2678400s (31 days)."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before it goes to the dead-letter topic."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100 (the Pub/Sub limits)."
  }
}

variable "topic_publishers" {
  description = "Extra principals allowed to publish to a bridged topic, keyed by source, e.g. { kafka = [\"serviceAccount:kafka-connect@P.iam.gserviceaccount.com\"] }. The forwarder is granted kubernetes already."
  type        = map(set(string))
  default     = {}

  validation {
    condition = alltrue([
      for source, members in var.topic_publishers : contains(["kubernetes", "kafka", "cdc", "gcp"], source) && alltrue([
        for m in members : can(regex("^(serviceAccount|user|group|domain|principal|principalSet):.+$", m))
      ])
    ])
    error_message = "topic_publishers keys must be kubernetes, kafka, cdc or gcp, and values IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com."
  }
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

  validation {
    condition     = var.sweep_schedule == "" || can(regex("^[0-9A-Za-z*/,-]+( [0-9A-Za-z*/,-]+){4}$", var.sweep_schedule))
    error_message = "sweep_schedule must be a 5-field cron expression such as \"* * * * *\" or \"*/5 * * * *\" (fields separated by single spaces), or \"\" to disable the sweep."
  }
}

variable "sweep_time_zone" {
  description = "Time zone (tz database name) in which sweep_schedule is read; matters only for schedules that name hours or days."
  type        = string
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^[A-Za-z]+(/[A-Za-z0-9_+-]+)*$", var.sweep_time_zone))
    error_message = "sweep_time_zone must be a tz database name such as Etc/UTC or Europe/Berlin."
  }
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
  description = "Delete audit records (collection firings) 90 days after they were written, through a TTL policy. Off keeps the audit trail forever."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Location of the Firestore database (a region such as europe-west1, or a multi-region such as eur3). Default: region."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^[a-z0-9-]+$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location id such as europe-west1, nam5 or eur3."
  }
}

# ---------------------------------------------------------------------------------------------
# In-cluster forwarder (kubernetes source)
# ---------------------------------------------------------------------------------------------

variable "forwarder_namespace" {
  description = "Kubernetes namespace the forwarder runs in."
  type        = string
  default     = "khook"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.forwarder_namespace))
    error_message = "forwarder_namespace must be a Kubernetes namespace name (DNS label)."
  }
}

variable "forwarder_service_account" {
  description = "Kubernetes service account of the forwarder; it is bound to the forwarder's Google service account."
  type        = string
  default     = "khook-forwarder"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.forwarder_service_account))
    error_message = "forwarder_service_account must be a Kubernetes service account name (DNS subdomain)."
  }
}

variable "workload_identity_pool" {
  description = "GKE Workload Identity pool of the cluster running the forwarder. Default: <project_id>.svc.id.goog (the cluster lives in this project)."
  type        = string
  default     = null

  validation {
    condition     = var.workload_identity_pool == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]\\.svc\\.id\\.goog$", var.workload_identity_pool))
    error_message = "workload_identity_pool must look like PROJECT_ID.svc.id.goog."
  }
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
