output "webhook_url" {
  description = "URL of the webhook function (POST signed events here); null when webhook is not enabled."
  value       = try(google_cloudfunctions2_function.this["webhook"].service_config[0].uri, null)
}

output "alertmanager_url" {
  description = "URL of the alertmanager function (Alertmanager webhook_configs url); null when alertmanager is not enabled."
  value       = try(google_cloudfunctions2_function.this["alertmanager"].service_config[0].uri, null)
}

output "topics" {
  description = "Ingress topic name per bridged source (publish here), and the sweep function's topic fed by Cloud Scheduler."
  value       = { for source, topic in google_pubsub_topic.source : source => topic.name }
}

output "topic_ids" {
  description = "Ingress topic id (projects/P/topics/T) per bridged source, and the sweep function's."
  value       = { for source, topic in google_pubsub_topic.source : source => topic.id }
}

output "dead_letter_subscriptions" {
  description = "Subscription holding undeliverable messages, per Pub/Sub function."
  value       = { for source, sub in google_pubsub_subscription.dead_letter_hold : source => sub.name }
}

output "function_service_accounts" {
  description = "Runtime service account email per function."
  value       = { for source, sa in google_service_account.runtime : source => sa.email }
}

output "forwarder_service_account_email" {
  description = "Google service account for the forwarder; put it in the iam.gke.io/gcp-service-account annotation. null when kubernetes is not enabled."
  value       = one(google_service_account.forwarder[*].email)
}

output "sweep_scheduler_job" {
  description = "Name of the Cloud Scheduler job that ticks the sweep function (gcloud scheduler jobs run|pause|resume NAME --location=REGION); null when sweep_schedule is \"\"."
  value       = one(google_cloud_scheduler_job.sweep[*].name)
}

output "source_bucket" {
  description = "Bucket holding the function source archives."
  value       = google_storage_bucket.sources.name
}

output "monitoring_notification_channel" {
  description = "Cloud Monitoring notification channel (projects/P/notificationChannels/ID) to add to alert policies; null unless gcp is enabled and monitoring_notification_channel is true."
  value       = one(google_monitoring_notification_channel.pubsub[*].name)
}
