"""Click commands, one module per area; `tunnel_tui.cli` registers them lazily."""
