# khook watching itself: where its telemetry goes (var.telemetry), the roles the exporters need,
# four alert policies and one Cloud Monitoring dashboard (dashboard.json.tftpl) over the same
# figures. The khook.* metrics are written by the functions' OpenTelemetry exporter under
# workload.googleapis.com/ (docs/operations.md, "Telemetry"); dead letters and the forwarder's
# publishing are read from Pub/Sub's own metrics, so those two alerts work with telemetry off.
# Its variables are in variables.tf ("Telemetry and alerts"), checked in validation.tf.

locals {
  telemetry_enabled = var.telemetry == "gcp"
  # Written by the exporters: every function's identity, and the forwarder's when it exists.
  exporter_roles = ["roles/cloudtrace.agent", "roles/monitoring.metricWriter"]
  exporter_grants = local.telemetry_enabled ? merge(
    { for pair in setproduct(keys(local.enabled_functions), local.exporter_roles) : "fn-${pair[0]}/${pair[1]}" => { member = "serviceAccount:${google_service_account.runtime[pair[0]].email}", role = pair[1] } },
    local.forwarder_enabled ? { for role in local.exporter_roles : "forwarder/${role}" => { member = "serviceAccount:${google_service_account.forwarder[0].email}", role = role } } : {},
  ) : {}
  # The khook.* metrics as Cloud Monitoring names them, on the exporter's generic_task resource.
  khook_metric        = "workload.googleapis.com/khook"
  khook_metric_filter = "resource.type = \"generic_task\" AND metric.type = \"${local.khook_metric}"
  dead_letter_topics  = "resource.type = \"pubsub_topic\" AND monitoring.regex.full_match(resource.label.topic_id, \"${var.name_prefix}-.*-dead-letter\")"
}

resource "google_project_iam_member" "telemetry_exporter" {
  for_each = local.exporter_grants

  project = var.project_id
  role    = each.value.role
  member  = each.value.member
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "${var.name_prefix}: events dead-lettered"
  combiner              = "OR"
  notification_channels = var.alert_channels
  user_labels           = merge(var.labels, { app = "khook" })

  documentation {
    mime_type = "text/markdown"
    content   = "A Pub/Sub message failed every delivery attempt and went to a `${var.name_prefix}-<source>-dead-letter` topic. Its hold subscription keeps it: read it, fix the cause (function logs by message id), and replay it (docs/operations.md, \"Alerts\")."
  }

  conditions {
    display_name = "messages published to a dead-letter topic"
    condition_threshold {
      filter          = "${local.dead_letter_topics} AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.topic_id"]
      }
    }
  }
}

resource "google_monitoring_alert_policy" "dispatch_failures" {
  display_name          = "${var.name_prefix}: dispatches failing"
  combiner              = "OR"
  notification_channels = var.alert_channels
  user_labels           = merge(var.labels, { app = "khook" })

  documentation {
    mime_type = "text/markdown"
    content   = "More than ${var.alert_failure_ratio * 100}% of the dispatches to agents failed over 10 minutes (khook.dispatches by outcome). Transient failures are redelivered; check the agent's reachability and the function logs for the outcome."
  }

  conditions {
    display_name = "failed share of khook.dispatches"
    condition_threshold {
      filter                  = "${local.khook_metric_filter}.dispatches\" AND metric.label.outcome != \"ok\""
      denominator_filter      = "${local.khook_metric_filter}.dispatches\""
      comparison              = "COMPARISON_GT"
      threshold_value         = var.alert_failure_ratio
      duration                = "600s"
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "circuit_open" {
  display_name          = "${var.name_prefix}: agent circuit open"
  combiner              = "OR"
  notification_channels = var.alert_channels
  user_labels           = merge(var.labels, { app = "khook" })

  documentation {
    mime_type = "text/markdown"
    content   = "Storm control opened an agent's circuit after consecutive failures: its events are held for redelivery (decision failed:circuit-open) until the cool-down ends. The console's circuit panel names the agent."
  }

  conditions {
    display_name = "khook.decisions failed:circuit-open"
    condition_threshold {
      filter          = "${local.khook_metric_filter}.decisions\" AND metric.label.decision = \"failed:circuit-open\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.function"]
      }
    }
  }
}

resource "google_monitoring_alert_policy" "forwarder_silent" {
  count = local.forwarder_enabled ? 1 : 0

  display_name          = "${var.name_prefix}: forwarder not publishing"
  combiner              = "OR"
  notification_channels = var.alert_channels
  user_labels           = merge(var.labels, { app = "khook" })

  documentation {
    mime_type = "text/markdown"
    content   = "Nothing was published to ${var.name_prefix}-kubernetes for ${var.alert_silence_seconds} s. Check the forwarder's pod (readiness probe, khook_forwarder_* metrics) and its Workload Identity (docs/forwarder.md)."
  }

  conditions {
    display_name = "no publish to the kubernetes topic"
    condition_absent {
      filter   = "resource.type = \"pubsub_topic\" AND resource.label.topic_id = \"${var.name_prefix}-kubernetes\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\""
      duration = "${var.alert_silence_seconds}s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

resource "google_monitoring_dashboard" "khook" {
  dashboard_json = templatefile("${path.module}/dashboard.json.tftpl", {
    name_prefix = var.name_prefix
    metric      = local.khook_metric
  })
}
