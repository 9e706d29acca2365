"""reconciler: declarative, GitOps-style management of Mistral AI batch jobs."""

__version__ = "0.1.0"
