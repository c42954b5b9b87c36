# Ingress topics for the bridged sources and for the sweep function's ticks (scheduler.tf), each
# with its own push subscription into the function and a dead-letter topic whose hold
# subscription keeps what could not be delivered.

resource "google_pubsub_topic" "source" {
  #checkov:skip=CKV_GCP_83:Event payloads are encrypted with Google-managed keys; CMEK adds a KMS key ring and per-message KMS cost without a requirement for it.
  for_each = local.pubsub_functions

  name                       = "${var.name_prefix}-${each.key}"
  message_retention_duration = var.topic_retention
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Same data as the source topic; Google-managed encryption, see google_pubsub_topic.source.
  for_each = local.pubsub_functions

  name = "${var.name_prefix}-${each.key}-dead-letter"
}

# Messages published to a topic without subscriptions are dropped: this one keeps dead letters
# for inspection and replay (docs/deployment.md).
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each = local.pubsub_functions

  name                       = "${var.name_prefix}-${each.key}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = var.dead_letter_retention
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = "" # never expire, however quiet
  }
}

locals {
  # Every push into a Pub/Sub function, keyed by subscription (<prefix>-<key>-push): each
  # function's own topic, and for the gcp source also the fixed topic Cloud Build publishes to
  # (gcp.tf). A push dead-letters to its function's dead-letter topic.
  pushes = merge(
    { for name in keys(local.pubsub_functions) : name => { function = name, topic_id = google_pubsub_topic.source[name].id, topic_name = google_pubsub_topic.source[name].name } },
    local.gcp_enabled ? { "gcp-cloud-builds" = { function = "gcp", topic_id = "projects/${var.project_id}/topics/cloud-builds", topic_name = "cloud-builds" } } : {},
  )
}

resource "google_pubsub_subscription" "push" {
  for_each = local.pushes

  name                 = "${var.name_prefix}-${each.key}-push"
  topic                = each.value.topic_id
  ack_deadline_seconds = local.push_ack_deadline

  push_config {
    # The /projects/P/topics/T suffix lets functions-framework fill in the CloudEvent source.
    push_endpoint = "${google_cloudfunctions2_function.this[each.value.function].service_config[0].uri}/projects/${var.project_id}/topics/${each.value.topic_name}"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.this[each.value.function].service_config[0].uri
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.function].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = local.push_minimum_backoff
    maximum_backoff = local.push_maximum_backoff
  }

  expiration_policy {
    ttl = "" # the default (31 days without activity) would silently delete a quiet source
  }

  depends_on = [
    google_pubsub_topic.cloud_builds, # referenced by name: cloud-builds may exist already
    google_cloud_run_v2_service_iam_member.invoker,
    google_cloudfunctions2_function_iam_member.invoker,
  ]
}

# Without these two grants to the Pub/Sub service agent nothing is dead-lettered.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.pubsub_functions

  topic  = google_pubsub_topic.dead_letter[each.key].id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "push_subscriber" {
  for_each = local.pushes

  subscription = google_pubsub_subscription.push[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Publishers outside this configuration (Kafka Connect, Debezium Server, ...).
resource "google_pubsub_topic_iam_member" "extra_publisher" {
  for_each = merge([
    for source, members in var.topic_publishers : {
      for m in members : "${source}/${m}" => { source = source, member = m }
    } if contains(keys(local.pubsub_functions), source)
  ]...)

  topic  = google_pubsub_topic.source[each.value.source].id
  role   = "roles/pubsub.publisher"
  member = each.value.member
}
