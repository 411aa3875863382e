"""Runtimes launch a step's executor: local processes, Docker containers, Kubernetes pods."""
