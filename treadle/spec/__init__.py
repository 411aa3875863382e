"""Workflow specs: manifest text <-> typed proto <-> the Argo-shaped dict the core uses."""
