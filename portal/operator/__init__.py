"""The operator's web UI: its own Flask app on its own HTTPS listener, under its own Unix user.

Built on the shared web layer (`portal.web`), never on the residents' edge, caches or error
pages; every kernel action goes through hotspotd's operator operations with the signed-in
account as the actor.
"""
