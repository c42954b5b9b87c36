# Identities, least privilege:
#   <prefix>-fn-<name>    runtime of one function: Firestore, and read access to its own secrets only
#   <prefix>-pusher       OIDC identity of the push subscriptions: may invoke the Pub/Sub functions
#   <prefix>-build        Cloud Build identity that turns the archives into function images
# The forwarder's identity is in forwarder.tf.

resource "google_service_account" "runtime" {
  for_each = local.enabled_functions

  account_id   = "${var.name_prefix}-fn-${each.key}"
  display_name = "khook ${each.key} function runtime"
}

resource "google_service_account" "pusher" {
  account_id   = "${var.name_prefix}-pusher"
  display_name = "khook Pub/Sub push identity"
}

resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "khook function builds"
}

# Firestore access cannot be scoped below the project without IAM conditions on database names;
# datastore.user reads and writes documents but cannot change indexes, TTL or databases.
resource "google_project_iam_member" "runtime_datastore" {
  for_each = local.enabled_functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.runtime[each.key].email}"
}

# Cloud Build writes logs and the function image (Artifact Registry). Cloud Run Builder is the
# role Google documents for a custom build service account; unlike cloudbuild.builds.builder it
# cannot act as other service accounts.
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/run.builder"])

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reader" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# --- Invoker policy ---------------------------------------------------------------------------
# A gen2 function is a Cloud Run service of the same name; callers need roles/run.invoker on
# that service. roles/cloudfunctions.invoker on the function is granted too, as Google's module
# does, to every invoker but allUsers.

locals {
  # Who may call which function, keyed "<function>/<member>" (the push identity as "pusher"):
  #   - the push identity, on every Pub/Sub function (its subscriptions send OIDC tokens);
  #   - allUsers, on the public HTTP functions only: the webhook function, and the alertmanager
  #     function unless alertmanager_public = false. Both authenticate every request in code;
  #   - var.http_invokers, on every HTTP function that receives events (Google-signed ID token,
  #     audience = its URL);
  #   - var.console_viewers, on the console only (never public, never the event senders).
  invokers = merge(
    { for name in keys(local.pubsub_functions) : "${name}/pusher" => { function = name, member = "serviceAccount:${google_service_account.pusher.email}" } },
    { for name in keys(local.public_functions) : "${name}/allUsers" => { function = name, member = "allUsers" } },
    { for pair in setproduct(keys(local.receiving_functions), var.http_invokers) : "${pair[0]}/${pair[1]}" => { function = pair[0], member = pair[1] } },
    { for member in var.console_viewers : "console/${member}" => { function = "console", member = member } },
  )
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invokers

  location = google_cloudfunctions2_function.this[each.value.function].location
  name     = google_cloudfunctions2_function.this[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
}

resource "google_cloudfunctions2_function_iam_member" "invoker" {
  # By key: the pusher's member is unknown until its account exists, and for_each keys must be known.
  for_each = { for key, grant in local.invokers : key => grant if !endswith(key, "/allUsers") }

  location       = google_cloudfunctions2_function.this[each.value.function].location
  cloud_function = google_cloudfunctions2_function.this[each.value.function].name
  role           = "roles/cloudfunctions.invoker"
  member         = each.value.member
}

# The Pub/Sub service agent mints the OIDC tokens for the pusher identity. Projects whose agent
# predates 2021-04-08 need this grant explicitly.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  count = var.grant_pubsub_token_creator ? 1 : 0

  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}
