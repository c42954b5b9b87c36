# Source archives of the functions. Object names carry the archive MD5 (functions.tf), so older
# objects become noncurrent when replaced and are removed after a grace period.

resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs written by Terraform; Cloud Audit Logs record access, a separate log bucket adds nothing here.
  name     = "${var.project_id}-${var.name_prefix}-sources"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only build inputs, reproducible with `make package`

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}
