"""Results in formats other tools read (written from a run's stored records only)."""

from qualify.export.prometheus import export_prometheus

__all__ = ["export_prometheus"]
