"""Optional integrations, each importable only when its own dependency is installed."""
