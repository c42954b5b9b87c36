# The gcp source's second input and its publishers. Its own topic (pubsub.tf, khook-gcp) takes
# Cloud Monitoring notifications; Cloud Build publishes only to the fixed topic cloud-builds, so
# this file subscribes the same function to that topic, with the same retries and dead letters.

locals {
  gcp_enabled                   = contains(keys(local.pubsub_functions), "gcp")
  monitoring_notification_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "cloud_builds" {
  #checkov:skip=CKV_GCP_83:Build status messages; Google-managed encryption, see google_pubsub_topic.source.
  count = local.gcp_enabled && var.create_cloud_builds_topic ? 1 : 0

  name = "cloud-builds" # the name Cloud Build publishes to; it cannot be changed
}

resource "google_pubsub_subscription" "cloud_builds_push" {
  count = local.gcp_enabled ? 1 : 0

  name                 = "${var.name_prefix}-gcp-cloud-builds-push"
  topic                = "projects/${var.project_id}/topics/cloud-builds"
  ack_deadline_seconds = local.push_ack_deadline

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.pubsub["gcp"].service_config[0].uri}/projects/${var.project_id}/topics/cloud-builds"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.pubsub["gcp"].service_config[0].uri
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter["gcp"].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = local.push_minimum_backoff
    maximum_backoff = local.push_maximum_backoff
  }

  expiration_policy {
    ttl = "" # builds can be rare; the default expiry would delete a quiet subscription
  }

  depends_on = [
    google_pubsub_topic.cloud_builds,
    google_cloud_run_v2_service_iam_member.pusher,
    google_cloudfunctions2_function_iam_member.pusher,
  ]
}

# Dead-lettering from this subscription needs the Pub/Sub service agent on it, as in pubsub.tf.
resource "google_pubsub_subscription_iam_member" "cloud_builds_push_subscriber" {
  count = local.gcp_enabled ? 1 : 0

  subscription = google_pubsub_subscription.cloud_builds_push[0].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Cloud Monitoring publishes notifications as its notification service agent.
resource "google_pubsub_topic_iam_member" "monitoring_publisher" {
  count = local.gcp_enabled ? 1 : 0

  topic  = google_pubsub_topic.source["gcp"].id
  role   = "roles/pubsub.publisher"
  member = local.monitoring_notification_agent
}

resource "google_monitoring_notification_channel" "pubsub" {
  count = local.gcp_enabled && var.monitoring_notification_channel ? 1 : 0

  display_name = "${var.name_prefix} agents"
  type         = "pubsub"
  description  = "Incidents to khook: each opened or closed incident becomes a monitoring-incident event."
  labels = {
    topic = google_pubsub_topic.source["gcp"].id
  }

  depends_on = [google_pubsub_topic_iam_member.monitoring_publisher]
}
