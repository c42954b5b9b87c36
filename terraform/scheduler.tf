# The clock of the sweep function: Cloud Scheduler publishes one tick per var.sweep_schedule to
# the sweep topic, whose push subscription (pubsub.tf) invokes the function. The message content
# is ignored. Cloud Scheduler publishes through its own service agent, which needs no grant for a
# topic in the same project (and a pubsub_target cannot name a topic in another one).
resource "google_cloud_scheduler_job" "sweep" {
  count = local.sweep_enabled ? 1 : 0

  name        = "${var.name_prefix}-sweep"
  description = "Tick for the khook sweep function: held-back events whose group went quiet get their run."
  region      = var.region
  schedule    = var.sweep_schedule
  time_zone   = var.sweep_time_zone
  # No attempt_deadline: Pub/Sub targets ignore it, and setting it leaves a permanent diff.

  # A retry covers only a failed publish; the function always acknowledges, and the next tick
  # sweeps again anyway. Two quick retries stay well inside a one-minute schedule.
  retry_config {
    retry_count          = 2
    min_backoff_duration = "5s"
    max_backoff_duration = "20s"
    max_doublings        = 2
  }

  pubsub_target {
    topic_name = google_pubsub_topic.source["sweep"].id
    data       = base64encode(jsonencode({ tick = "sweep" }))
  }
}
