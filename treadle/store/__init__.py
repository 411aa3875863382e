"""Durable state shared helpers. Each service owns its own tables."""
