locals {
  # Every deployable function: one directory under functions/, one archive build/functions/<key>.zip.
  # `trigger` is how it is invoked: "pubsub" (a push subscription from pubsub.tf, internal ingress
  # only) or "http" (reachable from the internet, authenticating each request itself).
  # `secrets` lists the environment variables each may read from Secret Manager; only the ones
  # given in var.secrets are created and injected. `environment` is added to local.environment.
  # Any key of local.function_defaults may be set here to override it for one function.
  functions = {
    kubernetes = {
      trigger     = "pubsub"
      description = "Kubernetes Events from the in-cluster forwarder (Pub/Sub push) to agent prompts."
      secrets     = ["KHOOK_A2A_TOKEN", "KHOOK_REDACTION_KEY"]
      environment = {}
    }
    kafka = {
      trigger     = "pubsub"
      description = "Kafka records (Kafka Connect Pub/Sub sink) to agent prompts."
      secrets     = ["KHOOK_A2A_TOKEN", "KHOOK_REDACTION_KEY"]
      environment = {}
    }
    cdc = {
      trigger     = "pubsub"
      description = "Database change events (Debezium Server Pub/Sub sink) to agent prompts."
      secrets     = ["KHOOK_A2A_TOKEN", "KHOOK_REDACTION_KEY"]
      environment = {}
    }
    # Google Cloud's own alerting: the Monitoring notification channel publishes to this source's
    # topic, and gcp.tf adds a second push subscription on Cloud Build's cloud-builds topic.
    gcp = {
      trigger     = "pubsub"
      description = "Cloud Monitoring incidents and Cloud Build failures (Pub/Sub) to agent prompts."
      secrets     = ["KHOOK_A2A_TOKEN", "KHOOK_REDACTION_KEY"]
      environment = {}
    }
    alertmanager = {
      trigger     = "http"
      description = "Alertmanager webhook receiver to agent prompts."
      secrets     = ["KHOOK_ALERTMANAGER_TOKEN", "KHOOK_A2A_TOKEN", "KHOOK_REDACTION_KEY"]
      environment = {
        # Not public: Cloud Run IAM already authenticated the caller, so the function accepts
        # requests without its own bearer token (one is still checked when configured).
        KHOOK_ALERTMANAGER_ALLOW_UNAUTHENTICATED = tostring(!var.alertmanager_public)
      }
    }
    webhook = {
      trigger     = "http"
      description = "Signed generic webhooks to agent prompts."
      secrets     = ["KHOOK_WEBHOOK_HMAC_SECRET", "KHOOK_WEBHOOK_TOKEN", "KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET", "KHOOK_WEBHOOK_PAGERDUTY_SECRET", "KHOOK_A2A_TOKEN", "KHOOK_REDACTION_KEY"]
      environment = {}
    }
    # Not a source: the console (query API and dashboard; read-only but for deciding approvals), deployed when var.console_viewers
    # names someone. Cloud Run IAM lets only them in (iam.tf); the function then answers any client
    # and also checks KHOOK_CONSOLE_TOKEN when that secret is given.
    console = {
      trigger     = "http"
      description = "Console: query API and dashboard over the audit trail and storm-control state; decides approvals."
      secrets     = ["KHOOK_CONSOLE_TOKEN"]
      environment = { KHOOK_CONSOLE_ALLOW_REMOTE = "true" }
    }
    # Not a source: receives the A2A push notifications of the agent tasks khook follows, deployed
    # when var.task_push_notifications is true. Public (agents call it from wherever they run):
    # each notification must carry its task's own token, checked against the state store.
    tasks = {
      trigger     = "http"
      description = "A2A push notifications of dispatched agent tasks: their state and finding."
      secrets     = ["KHOOK_GITHUB_TOKEN", "KHOOK_PAGERDUTY_TOKEN"]
      environment = {}
    }
    # Not a source: fed by the Cloud Scheduler job in scheduler.tf, one tick per var.sweep_schedule.
    sweep = {
      trigger     = "pubsub"
      description = "Scheduled sweep: held-back events of storm control whose group went quiet get their agent run."
      secrets     = ["KHOOK_A2A_TOKEN", "KHOOK_REDACTION_KEY", "KHOOK_GITHUB_TOKEN", "KHOOK_PAGERDUTY_TOKEN"]
      environment = {}
    }
  }

  # What every function gets unless its entry in local.functions says otherwise.
  function_defaults = {
    entry_point = "handle" # in the main.py at the root of the archive (scripts/package.py)
    memory      = var.function_memory
    cpu         = var.function_cpu
    timeout     = local.timeout_seconds
  }

  # Sources follow var.sources; the sweep function (not a source) follows var.sweep_schedule, the
  # console follows var.console_viewers.
  sweep_enabled     = var.sweep_schedule != ""
  console_enabled   = length(var.console_viewers) > 0
  enabled_functions = { for name, spec in local.functions : name => merge(local.function_defaults, spec) if name == "sweep" ? local.sweep_enabled : name == "console" ? local.console_enabled : name == "tasks" ? var.task_push_notifications : contains(var.sources, name) }
  pubsub_functions  = { for name, spec in local.enabled_functions : name => spec if spec.trigger == "pubsub" }
  http_functions    = { for name, spec in local.enabled_functions : name => spec if spec.trigger == "http" }
  public_functions  = { for name, spec in local.http_functions : name => spec if name == "webhook" || name == "tasks" || (name == "alertmanager" && var.alertmanager_public) }
  # HTTP functions that receive events (var.http_invokers may call them); not the console.
  receiving_functions = { for name, spec in local.http_functions : name => spec if name != "console" }

  archive_dir = coalesce(var.source_archive_dir, "${path.module}/../build/functions")

  # Function limits. Push subscriptions wait ack_deadline for an answer, so it must exceed the timeout.
  timeout_seconds      = 60
  push_ack_deadline    = 120
  push_minimum_backoff = "10s"
  push_maximum_backoff = "600s"

  # Environment shared by every function; secrets come separately (secret_environment_variables).
  environment = {
    KHOOK_STATE          = "firestore"
    KHOOK_CONFIG_DIR     = "config" # bundled at the archive root by `make package`
    KHOOK_LOG_FORMAT     = "json"
    KHOOK_DEDUP_WINDOW   = tostring(var.dedup_window_seconds)
    KAGENT_API_URL       = var.kagent_api_url
    KAGENT_USER_ID       = var.kagent_user_id
    GOOGLE_CLOUD_PROJECT = var.project_id
    # Where agents that advertise push notifications report their tasks (functions/tasks);
    # empty: every task is polled by the sweep.
    KHOOK_TRACK_PUSH_URL = var.task_push_notifications ? "https://${var.region}-${var.project_id}.cloudfunctions.net/${var.name_prefix}-tasks" : ""
    KHOOK_TELEMETRY      = var.telemetry # monitoring.tf
  }

  # Secret names are not secret; only the values are.
  provided_secrets = toset(nonsensitive(keys(var.secrets)))
  function_secrets = {
    for name, spec in local.enabled_functions : name => [for s in spec.secrets : s if contains(local.provided_secrets, s)]
  }
  secret_access = merge([
    for name, secrets in local.function_secrets : { for s in secrets : "${name}/${s}" => { function = name, secret = s } }
  ]...)

  pubsub_service_agent   = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  forwarder_enabled      = contains(keys(local.pubsub_functions), "kubernetes")
  workload_identity_pool = coalesce(var.workload_identity_pool, "${var.project_id}.svc.id.goog")
}

# Read by every plan, so its precondition is where every variable is checked (validation.tf):
# before the project is looked up, and failing the plan on any problem.
data "google_project" "this" {
  project_id = var.project_id

  lifecycle {
    precondition {
      condition     = length(local.setting_problems) == 0
      error_message = "Invalid variables:\n- ${join("\n- ", local.setting_problems)}"
    }
  }
}
