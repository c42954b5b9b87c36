# The gcp source's second input and its publishers. Its own topic (pubsub.tf, khook-gcp) takes
# Cloud Monitoring notifications; Cloud Build publishes only to the fixed topic cloud-builds, so
# the same function also gets a push subscription on that topic (local.pushes in pubsub.tf, with
# the same retries and dead letters).

locals {
  gcp_enabled                   = contains(keys(local.pubsub_functions), "gcp")
  monitoring_notification_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "cloud_builds" {
  #checkov:skip=CKV_GCP_83:Build status messages; Google-managed encryption, see google_pubsub_topic.source.
  count = local.gcp_enabled && var.create_cloud_builds_topic ? 1 : 0

  name = "cloud-builds" # the name Cloud Build publishes to; it cannot be changed
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
