"""The live site agent: site config (``config``), the receiver loop (``loop``), and the hooks that
health and evidence plug into. See ``docs/agent.md``."""
