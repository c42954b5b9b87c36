# One Cloud Run function (gen2) per enabled source, plus the sweep function unless sweep_schedule
# is "", all from local.functions (locals.tf). Every function's entry point is `handle` in the
# main.py at the root of its archive (see scripts/package.py).

resource "google_storage_bucket_object" "source" {
  for_each = local.enabled_functions

  # The archive's MD5 in the name: a code change creates a new object and therefore a new
  # revision; with a fixed name the function would not be redeployed (provider issue #1938).
  name   = "${each.key}-${filemd5("${local.archive_dir}/${each.key}.zip")}.zip"
  bucket = google_storage_bucket.sources.name
  source = "${local.archive_dir}/${each.key}.zip"

  lifecycle {
    precondition {
      condition     = fileexists("${local.archive_dir}/${each.key}.zip")
      error_message = "Missing source archive ${local.archive_dir}/${each.key}.zip: run `make package` first."
    }
  }
}

# Every enabled function, whatever its trigger (local.functions). Pub/Sub functions have no
# event_trigger: Eventarc's subscription cannot have a dead-letter policy, so pubsub.tf creates
# the push subscription (retries, dead letters) itself. HTTP functions are reachable from the
# internet and authenticate every request themselves (HMAC or bearer token from Secret
# Manager), see the invoker policy in iam.tf.
resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:Only the HTTP functions get ALLOW_ALL: Alertmanager and webhook senders run outside Google Cloud, and the function authenticates each request with a Secret Manager token or HMAC key; the console is reached through Cloud Run IAM (console_viewers only).
  for_each = local.enabled_functions

  name        = "${var.name_prefix}-${each.key}"
  location    = var.region
  description = each.value.description

  build_config {
    runtime         = "python311"
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.runtime[each.key].email
    # Pub/Sub push from this project is internal; HTTP senders are anywhere.
    ingress_settings                 = each.value.trigger == "http" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = var.max_request_concurrency
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    timeout_seconds                  = each.value.timeout
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(local.environment, each.value.environment)
    # Optional route into a VPC, e.g. to an in-cluster kagent behind an internal load balancer.
    vpc_connector                 = var.vpc_connector
    vpc_connector_egress_settings = var.vpc_connector == null ? null : var.vpc_egress

    dynamic "secret_environment_variables" {
      for_each = toset(local.function_secrets[each.key])
      content {
        key        = secret_environment_variables.value
        project_id = var.project_id
        secret     = google_secret_manager_secret.this[secret_environment_variables.value].secret_id
        # Pinned: a new value creates a new version and redeploys; "latest" would reach only new instances.
        version = google_secret_manager_secret_version.this[secret_environment_variables.value].version
      }
    }
  }

  lifecycle {
    precondition {
      condition     = each.value.trigger != "pubsub" || each.value.timeout < local.push_ack_deadline
      error_message = "The ${each.key} function's timeout (${each.value.timeout} s) must be shorter than the push subscription's ack deadline (${local.push_ack_deadline} s), or Pub/Sub redelivers events still being handled."
    }
    precondition {
      condition     = each.key != "webhook" || length(setintersection(local.provided_secrets, ["KHOOK_WEBHOOK_HMAC_SECRET", "KHOOK_WEBHOOK_TOKEN", "KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET", "KHOOK_WEBHOOK_PAGERDUTY_SECRET"])) > 0
      error_message = "The webhook function is public: set secrets.KHOOK_WEBHOOK_HMAC_SECRET, KHOOK_WEBHOOK_TOKEN, KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET or KHOOK_WEBHOOK_PAGERDUTY_SECRET."
    }
    precondition {
      condition     = each.key != "alertmanager" || !var.alertmanager_public || contains(local.provided_secrets, "KHOOK_ALERTMANAGER_TOKEN")
      error_message = "The alertmanager function is public (alertmanager_public = true): set secrets.KHOOK_ALERTMANAGER_TOKEN, or set alertmanager_public = false and list callers in http_invokers."
    }
  }

  # Cloud Run refuses a revision whose identity cannot read its secrets, and the build needs its roles.
  depends_on = [
    google_secret_manager_secret_iam_member.access,
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reader,
  ]
}
