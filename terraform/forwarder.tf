# Identity of the in-cluster forwarder (GKE Workload Identity): it may publish to the kubernetes
# topic and nothing else. Annotate the Kubernetes service account with
#   iam.gke.io/gcp-service-account: <output forwarder_service_account_email>

resource "google_service_account" "forwarder" {
  count = local.forwarder_enabled ? 1 : 0

  account_id   = "${var.name_prefix}-forwarder"
  display_name = "khook in-cluster forwarder"
}

resource "google_service_account_iam_member" "forwarder_workload_identity" {
  count = local.forwarder_enabled ? 1 : 0

  service_account_id = google_service_account.forwarder[0].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_identity_pool}[${var.forwarder_namespace}/${var.forwarder_service_account}]"
}

resource "google_pubsub_topic_iam_member" "forwarder_publisher" {
  count = local.forwarder_enabled ? 1 : 0

  topic  = google_pubsub_topic.source["kubernetes"].id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.forwarder[0].email}"
}
