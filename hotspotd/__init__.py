"""hotspot: a managed community hotspot for RT-level village internet."""

__version__ = "0.1.0"
