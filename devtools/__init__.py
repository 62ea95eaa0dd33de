"""Developer tools that live in the clone only: never installed, never imported by hotspotd or
the portal (setup.cfg packages only hotspotd and portal)."""
