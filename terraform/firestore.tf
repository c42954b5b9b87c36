# State store: collection `claims` (dedup, one document per claim with `expire_at`), the
# storm-control collections and `firings` (audit). TTL deletion lags by up to a day, so the
# code also checks `expire_at` itself.

resource "google_firestore_database" "state" {
  count = var.create_firestore_database ? 1 : 0

  name                    = "(default)"
  location_id             = coalesce(var.firestore_location, var.region)
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON" # `terraform destroy` leaves the data in place
}

# TTL on `expire_at`: claims (required), the storm-control collections (slots, leases,
# circuits; they would otherwise grow slowly) and, for audit retention, firings and their
# per-minute counters (firing_counts: each expires after the last record it counts).
resource "google_firestore_field" "ttl" {
  for_each = toset(var.firestore_trim_audit ? ["claims", "slots", "leases", "circuits", "firings", "firing_counts"] : ["claims", "slots", "leases", "circuits"])

  database   = var.create_firestore_database ? google_firestore_database.state[0].name : "(default)"
  collection = each.key
  field      = "expire_at"

  ttl_config {}
  index_config {} # no single-field index on a write-heavy timestamp nobody queries
}

# firing_counts.counts is a map with one entry per hook, source, type and decision of a minute,
# incremented with each audit record and only ever read whole: no index on its entries (they
# would cost an index write each, and a busy minute could reach the per-document entry limit).
resource "google_firestore_field" "firing_counts_counts" {
  database   = var.create_firestore_database ? google_firestore_database.state[0].name : "(default)"
  collection = "firing_counts"
  field      = "counts"

  index_config {}
}

# `khook firings --hook H` queries hook == H ordered by time, newest first.
resource "google_firestore_index" "firings_by_hook" {
  database   = var.create_firestore_database ? google_firestore_database.state[0].name : "(default)"
  collection = "firings"

  fields {
    field_path = "hook"
    order      = "ASCENDING"
  }
  fields {
    field_path = "at"
    order      = "DESCENDING"
  }
}

# The console's firings queries (khook_core/state/firestore.py): equality filters on any of
# these fields, with a page's order (at DESC; Firestore adds __name__ DESC itself, the
# cursor's tie-break) or a count's time range (at ASC). Firestore merges the single-field
# indexes for a query that filters on several fields. hook with at DESC is firings_by_hook.
locals {
  console_filter_fields = ["hook", "source", "event_type", "resource", "outcome", "incident"]
  console_firing_indexes = merge(
    { for field in local.console_filter_fields : "${field}-newest-first" => { field = field, order = "DESCENDING" } if field != "hook" },
    { for field in local.console_filter_fields : "${field}-time-range" => { field = field, order = "ASCENDING" } },
  )
}

resource "google_firestore_index" "console_firings" {
  for_each = local.console_firing_indexes

  database   = var.create_firestore_database ? google_firestore_database.state[0].name : "(default)"
  collection = "firings"

  fields {
    field_path = each.value.field
    order      = "ASCENDING"
  }
  fields {
    field_path = "at"
    order      = each.value.order
  }
}

# The console's backlog panel: pending == true ordered by key.
resource "google_firestore_index" "pending_backlogs" {
  database   = var.create_firestore_database ? google_firestore_database.state[0].name : "(default)"
  collection = "backlog"

  fields {
    field_path = "pending"
    order      = "ASCENDING"
  }
  fields {
    field_path = "key"
    order      = "ASCENDING"
  }
}
