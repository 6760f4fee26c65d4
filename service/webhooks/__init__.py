"""Issue-tracker webhooks, whatever the tracker: receive, decide, answer, then write the team back.

``intake`` (one delivery from bytes to a stored outcome), ``comments`` (what a write-back
comment says), ``writeback`` (the background worker), ``outbound`` (sending a planned request
with timeouts and bounded retries) and ``schemas`` (our response bodies). What differs between
trackers lives in ``service/trackers/``; the HTTP endpoints are in ``service/routes/webhooks.py``.
"""
