"""The bundled gcp samples the gcp source's tests read (config/samples/gcp/)."""

INCIDENT_OPEN = "monitoring-incident-k8s-container-open.json"
INCIDENT_CLOSED = "monitoring-incident-k8s-container-closed.json"
BUILD_FAILED = "cloud-build-failure.json"
BUILD_OK = "cloud-build-success.json"
BUILD_ATTRS = {"buildId": "9b4e2c1a-6f3d-4e8b-a1c7-2d5f8e9b0c34", "status": "FAILURE"}
