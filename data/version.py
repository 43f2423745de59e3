"""The project's version, in one place (setup.cfg reads it; caches and checkpoints record it)."""
TOOL_VERSION = "0.1.0"
