"""Step-by-step validation of a connection: `run(conn, catalog, ...)` yields StepResults."""

from tunnel_tui.validate.runner import SecretsSource, first_failure, run

__all__ = ["SecretsSource", "first_failure", "run"]
