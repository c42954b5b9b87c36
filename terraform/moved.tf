# State moves of the refactor that put the Pub/Sub and HTTP functions, their invoker grants and
# the Cloud Build push subscription each into one resource: an existing deployment keeps every
# object, `terraform plan` shows them as moved and nothing is destroyed or recreated. A `moved`
# block whose source is not in the state (a source that was never enabled) does nothing. Keep
# them until every deployment has applied this configuration once.

# Functions: one resource for every trigger.

moved {
  from = google_cloudfunctions2_function.pubsub["kubernetes"]
  to   = google_cloudfunctions2_function.this["kubernetes"]
}

moved {
  from = google_cloudfunctions2_function.pubsub["kafka"]
  to   = google_cloudfunctions2_function.this["kafka"]
}

moved {
  from = google_cloudfunctions2_function.pubsub["cdc"]
  to   = google_cloudfunctions2_function.this["cdc"]
}

moved {
  from = google_cloudfunctions2_function.pubsub["gcp"]
  to   = google_cloudfunctions2_function.this["gcp"]
}

moved {
  from = google_cloudfunctions2_function.pubsub["sweep"]
  to   = google_cloudfunctions2_function.this["sweep"]
}

moved {
  from = google_cloudfunctions2_function.http["alertmanager"]
  to   = google_cloudfunctions2_function.this["alertmanager"]
}

moved {
  from = google_cloudfunctions2_function.http["webhook"]
  to   = google_cloudfunctions2_function.this["webhook"]
}

# Invoker grants: keys "<function>/<member>" of local.invokers. The HTTP invokers kept their keys,
# so the whole resource moves.

moved {
  from = google_cloud_run_v2_service_iam_member.pusher["kubernetes"]
  to   = google_cloud_run_v2_service_iam_member.invoker["kubernetes/pusher"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pusher["kafka"]
  to   = google_cloud_run_v2_service_iam_member.invoker["kafka/pusher"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pusher["cdc"]
  to   = google_cloud_run_v2_service_iam_member.invoker["cdc/pusher"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pusher["gcp"]
  to   = google_cloud_run_v2_service_iam_member.invoker["gcp/pusher"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pusher["sweep"]
  to   = google_cloud_run_v2_service_iam_member.invoker["sweep/pusher"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.public["alertmanager"]
  to   = google_cloud_run_v2_service_iam_member.invoker["alertmanager/allUsers"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.public["webhook"]
  to   = google_cloud_run_v2_service_iam_member.invoker["webhook/allUsers"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.http_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker
}

moved {
  from = google_cloudfunctions2_function_iam_member.pusher["kubernetes"]
  to   = google_cloudfunctions2_function_iam_member.invoker["kubernetes/pusher"]
}

moved {
  from = google_cloudfunctions2_function_iam_member.pusher["kafka"]
  to   = google_cloudfunctions2_function_iam_member.invoker["kafka/pusher"]
}

moved {
  from = google_cloudfunctions2_function_iam_member.pusher["cdc"]
  to   = google_cloudfunctions2_function_iam_member.invoker["cdc/pusher"]
}

moved {
  from = google_cloudfunctions2_function_iam_member.pusher["gcp"]
  to   = google_cloudfunctions2_function_iam_member.invoker["gcp/pusher"]
}

moved {
  from = google_cloudfunctions2_function_iam_member.pusher["sweep"]
  to   = google_cloudfunctions2_function_iam_member.invoker["sweep/pusher"]
}

moved {
  from = google_cloudfunctions2_function_iam_member.http_invoker
  to   = google_cloudfunctions2_function_iam_member.invoker
}

# The gcp source's Cloud Build subscription: an entry of local.pushes.

moved {
  from = google_pubsub_subscription.cloud_builds_push[0]
  to   = google_pubsub_subscription.push["gcp-cloud-builds"]
}

moved {
  from = google_pubsub_subscription_iam_member.cloud_builds_push_subscriber[0]
  to   = google_pubsub_subscription_iam_member.push_subscriber["gcp-cloud-builds"]
}
