"""Environment variables the server's processes hand each other. Standard library only:
the supervisor imports this without loading the application."""

# Worker processes receive the parent's resolved settings through this variable.
SETTINGS_ENV = "CARGOHOLD_RESOLVED_SETTINGS"
# prometheus_client's folder for metric values shared by the worker processes.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
