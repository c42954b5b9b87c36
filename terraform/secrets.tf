# One Secret Manager secret per value given in var.secrets, readable only by the functions that
# use it (local.functions[*].secrets).

resource "google_secret_manager_secret" "this" {
  for_each = local.provided_secrets

  secret_id = "${var.name_prefix}-${lower(replace(trimprefix(each.key, "KHOOK_"), "_", "-"))}"

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "this" {
  for_each = local.provided_secrets

  secret      = google_secret_manager_secret.this[each.key].id
  secret_data = var.secrets[each.key]
  # Rotation creates the new version first; the old one is disabled, not destroyed, so a
  # rollback can re-enable it.
  deletion_policy = "DISABLE"

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each = local.secret_access

  secret_id = google_secret_manager_secret.this[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime[each.value.function].email}"
}
