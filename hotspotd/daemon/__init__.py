"""The root daemon, `hotspotd`: `service` (its state and work), `jobs` (its timetable) and
`main` (the entry point that builds it from the config and serves the control socket)."""
