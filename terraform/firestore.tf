# State store: collection `claims` (dedup, one document per claim with `expire_at`) and
# `firings` (audit). TTL deletion lags by up to a day, so the code also checks `expire_at`.

resource "google_firestore_database" "state" {
  count = var.create_firestore_database ? 1 : 0

  name                    = "(default)"
  location_id             = coalesce(var.firestore_location, var.region)
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON" # `terraform destroy` leaves the data in place
}

resource "google_firestore_field" "claims_ttl" {
  database   = var.create_firestore_database ? google_firestore_database.state[0].name : "(default)"
  collection = "claims"
  field      = "expire_at"

  ttl_config {}
  index_config {} # no single-field index on a write-heavy timestamp nobody queries
}
