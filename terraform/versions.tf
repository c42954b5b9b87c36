terraform {
  # Lifecycle preconditions need 1.2; tested with 1.11.
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Applied to every resource that takes labels (functions, topics, subscriptions, bucket, secrets).
  default_labels = merge({ app = var.name_prefix, managed-by = "terraform" }, var.labels)
}
