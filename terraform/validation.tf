# Checks of the input variables, written once. Each kind of check is a table below, keyed by the
# variable it checks (or, for a rule relating two, by the relation); local.setting_problems lists
# every entry that fails, and the precondition on data.google_project.this (locals.tf) fails the
# plan with all of them at once, before the project is looked up, so nothing is changed. Only
# locals and variables here: the tests evaluate this file with `terraform console`, which needs
# no provider.

locals {
  iam_member_pattern = "^(serviceAccount|user|group|domain|principal|principalSet):.+$"
  source_names       = ["kubernetes", "alertmanager", "webhook", "kafka", "cdc", "gcp"]
  bridged_sources    = ["kubernetes", "kafka", "cdc", "gcp"]
  secret_names       = ["KHOOK_ALERTMANAGER_TOKEN", "KHOOK_WEBHOOK_TOKEN", "KHOOK_WEBHOOK_HMAC_SECRET", "KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET", "KHOOK_WEBHOOK_PAGERDUTY_SECRET", "KHOOK_A2A_TOKEN", "KHOOK_CONSOLE_TOKEN", "KHOOK_GITHUB_TOKEN", "KHOOK_PAGERDUTY_TOKEN", "KHOOK_REDACTION_KEY"]

  # Every value must match the pattern (RE2). An optional setting that is unset (null, or ""
  # for sweep_schedule) has no values.
  setting_patterns = {
    project_id = { values = [var.project_id], pattern = "^[a-z][a-z0-9-]{4,28}[a-z0-9]$", message = "project_id must be a project id (6-30 characters: lowercase letters, digits, hyphens), not a project name or number." }
    region     = { values = [var.region], pattern = "^[a-z]+-[a-z]+[0-9]+$", message = "region must be a Google Cloud region such as europe-west1 or us-central1." }
    # Service account ids are limited to 30 characters; the longest is <prefix>-fn-alertmanager.
    name_prefix               = { values = [var.name_prefix], pattern = "^[a-z][a-z0-9-]{1,12}[a-z0-9]$", message = "name_prefix must be 3-14 characters: a lowercase letter first, then lowercase letters, digits or hyphens, not ending with a hyphen." }
    labels                    = { values = [for k, v in var.labels : "${k}=${v}"], pattern = "^[a-z][a-z0-9_-]{0,62}=[a-z0-9_-]{0,63}$", message = "Label keys must start with a lowercase letter; keys and values may contain only lowercase letters, digits, '_' and '-' (at most 63 characters)." }
    function_memory           = { values = [var.function_memory], pattern = "^[0-9]+(M|Mi|G|Gi)$", message = "function_memory must look like 256M, 512Mi or 1Gi." }
    kagent_api_url            = { values = [var.kagent_api_url], pattern = "^https?://[^/\\s]+(/\\S*)?$", message = "kagent_api_url must be an http:// or https:// URL." }
    vpc_connector             = { values = var.vpc_connector == null ? [] : [var.vpc_connector], pattern = "^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/locations/[a-z]+-[a-z]+[0-9]+/connectors/[a-z][-a-z0-9]{0,23}[a-z0-9]$", message = "vpc_connector must be null or projects/PROJECT_ID/locations/REGION/connectors/NAME (NAME: 2-25 lowercase letters, digits or hyphens, starting with a letter)." }
    http_invokers             = { values = var.http_invokers, pattern = local.iam_member_pattern, message = "http_invokers entries must be IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (allUsers is controlled by alertmanager_public)." }
    console_viewers           = { values = var.console_viewers, pattern = local.iam_member_pattern, message = "console_viewers entries must be IAM members such as group:sre@example.com (the console is never public)." }
    topic_publishers          = { values = flatten([for members in values(var.topic_publishers) : tolist(members)]), pattern = local.iam_member_pattern, message = "topic_publishers values must be IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com." }
    sweep_schedule            = { values = var.sweep_schedule == "" ? [] : [var.sweep_schedule], pattern = "^[0-9A-Za-z*/,-]+( [0-9A-Za-z*/,-]+){4}$", message = "sweep_schedule must be a 5-field cron expression such as \"* * * * *\" or \"*/5 * * * *\" (fields separated by single spaces), or \"\" to disable the sweep." }
    sweep_time_zone           = { values = [var.sweep_time_zone], pattern = "^[A-Za-z]+(/[A-Za-z0-9_+-]+)*$", message = "sweep_time_zone must be a tz database name such as Etc/UTC or Europe/Berlin." }
    firestore_location        = { values = var.firestore_location == null ? [] : [var.firestore_location], pattern = "^[a-z0-9-]+$", message = "firestore_location must be a Firestore location id such as europe-west1, nam5 or eur3." }
    forwarder_namespace       = { values = [var.forwarder_namespace], pattern = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", message = "forwarder_namespace must be a Kubernetes namespace name (DNS label)." }
    forwarder_service_account = { values = [var.forwarder_service_account], pattern = "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", message = "forwarder_service_account must be a Kubernetes service account name (DNS subdomain)." }
    alert_channels            = { values = var.alert_channels, pattern = "^projects/[a-z0-9-]+/notificationChannels/[0-9]+$", message = "alert_channels entries must be notification channel ids: projects/PROJECT/notificationChannels/NUMBER." }
    workload_identity_pool    = { values = var.workload_identity_pool == null ? [] : [var.workload_identity_pool], pattern = "^[a-z][a-z0-9-]{4,28}[a-z0-9]\\.svc\\.id\\.goog$", message = "workload_identity_pool must look like PROJECT_ID.svc.id.goog." }
  }

  # Whole numbers within [min, max]; null (a duration that is not "<seconds>s") fails.
  setting_ranges = {
    min_instances           = { value = var.min_instances, min = 0, max = 100, message = "min_instances must be a whole number from 0 to 100." }
    max_instances           = { value = var.max_instances, min = 1, max = 1000, message = "max_instances must be a whole number from 1 to 1000." }
    max_request_concurrency = { value = var.max_request_concurrency, min = 1, max = 1000, message = "max_request_concurrency must be a whole number from 1 to 1000." }
    dedup_window_seconds    = { value = var.dedup_window_seconds, min = 1, max = 604800, message = "dedup_window_seconds must be a whole number of seconds from 1 to 604800 (7 days)." }
    max_delivery_attempts   = { value = var.max_delivery_attempts, min = 5, max = 100, message = "max_delivery_attempts must be a whole number from 5 to 100 (the Pub/Sub limits)." }
    topic_retention         = { value = try(tonumber(regex("^([0-9]+)s$", var.topic_retention)[0]), null), min = 600, max = 2678400, message = "topic_retention must be seconds with an s suffix, from 600s (10 minutes) to 2678400s (31 days)." }
    alert_silence_seconds   = { value = var.alert_silence_seconds, min = 300, max = 86400, message = "alert_silence_seconds must be a whole number from 300 to 86400 (an absence condition's limits)." }
    dead_letter_retention   = { value = try(tonumber(regex("^([0-9]+)s$", var.dead_letter_retention)[0]), null), min = 600, max = 2678400, message = "dead_letter_retention must be seconds with an s suffix, from 600s (10 minutes) to 2678400s (31 days)." }
  }

  # Everything else, and the rules that relate two variables.
  setting_rules = {
    sources            = { ok = length(var.sources) > 0 && length(setsubtract(var.sources, local.source_names)) == 0, message = "sources must be a non-empty subset of kubernetes, alertmanager, webhook, kafka, cdc, gcp." }
    source_archive_dir = { ok = var.source_archive_dir == null || try(length(trimspace(var.source_archive_dir)) > 0, false), message = "source_archive_dir must be a non-empty path or null." }
    function_cpu       = { ok = try(tonumber(var.function_cpu) > 0 && tonumber(var.function_cpu) <= 8, false), message = "function_cpu must be a number of vCPUs greater than 0 and at most 8." }
    # Cluster DNS names resolve only inside the cluster, never from a Cloud Run function.
    kagent_api_url   = { ok = !can(regex("(?i)^https?://[^/:]*\\.(svc|cluster\\.local)\\.?(:[0-9]+)?(/|$)", var.kagent_api_url)), message = "kagent_api_url names a cluster-internal Service (.svc, .cluster.local), which functions cannot resolve: expose kagent through an internal load balancer or Gateway, use its address here and set vpc_connector (docs/deployment.md, \"Reaching a kagent inside GKE\")." }
    kagent_user_id   = { ok = length(trimspace(var.kagent_user_id)) > 0 && length(var.kagent_user_id) <= 256, message = "kagent_user_id must be a non-empty string of at most 256 characters." }
    vpc_egress       = { ok = contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], var.vpc_egress), message = "vpc_egress must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC." }
    topic_publishers = { ok = length(setsubtract(keys(var.topic_publishers), local.bridged_sources)) == 0, message = "topic_publishers keys must be kubernetes, kafka, cdc or gcp." }
    # The agent token is issued elsewhere; the inbound ones are ours to make long. Only whether
    # every value passes leaves the sensitive map.
    secrets        = { ok = nonsensitive(alltrue([for k, v in var.secrets : contains(local.secret_names, k) && length(v) >= (k == "KHOOK_A2A_TOKEN" ? 1 : 16)])), message = "secrets keys must be KHOOK_ALERTMANAGER_TOKEN, KHOOK_WEBHOOK_TOKEN, KHOOK_WEBHOOK_HMAC_SECRET, KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET, KHOOK_WEBHOOK_PAGERDUTY_SECRET, KHOOK_A2A_TOKEN, KHOOK_CONSOLE_TOKEN, KHOOK_GITHUB_TOKEN, KHOOK_PAGERDUTY_TOKEN or KHOOK_REDACTION_KEY; the inbound tokens, the signing secrets and the redaction key need at least 16 characters." }
    instance_range = { ok = var.min_instances <= var.max_instances, message = "min_instances (${var.min_instances}) must not exceed max_instances (${var.max_instances})." }
    # Telemetry and alerts (monitoring.tf).
    telemetry           = { ok = contains(["off", "gcp"], var.telemetry), message = "telemetry must be \"off\" or \"gcp\"." }
    alert_failure_ratio = { ok = var.alert_failure_ratio > 0 && var.alert_failure_ratio < 1, message = "alert_failure_ratio must be between 0 and 1 (exclusive)." }
    # A Serverless VPC Access connector serves only its own region.
    vpc_connector_region = { ok = var.vpc_connector == null || try(split("/", var.vpc_connector)[3] == var.region, false), message = "vpc_connector must be in the functions' region ${var.region}: a Serverless VPC Access connector serves only its own region." }
  }

  setting_problems = concat(
    [for name, check in local.setting_patterns : check.message if !alltrue([for v in check.values : can(regex(check.pattern, v))])],
    [for name, check in local.setting_ranges : check.message if !(check.value != null && try(check.value >= check.min && check.value <= check.max && floor(check.value) == check.value, false))],
    [for name, check in local.setting_rules : check.message if !check.ok],
  )
}
