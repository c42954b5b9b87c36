# Identity of the in-cluster forwarder (GKE Workload Identity): it may publish to the kubernetes
# topic, export its telemetry (monitoring.tf) and, with forwarder_cluster_hooks, use Firestore
# documents; nothing else. Annotate the Kubernetes service account with
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

# Hooks from the cluster (KHOOK_FORWARDER_HOOKS_STATE=firestore): the forwarder writes the
# configuration snapshot and reads the audit trail for each Hook's status. Document access
# only, as the functions' runtimes have it (iam.tf): datastore.user cannot change indexes, TTL
# policies or databases, and Firestore offers no narrower predefined role that can write.
resource "google_project_iam_member" "forwarder_datastore" {
  count = local.forwarder_enabled && var.forwarder_cluster_hooks ? 1 : 0

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.forwarder[0].email}"
}
