"""Issue-tracker webhooks: verify, decide, answer, then write the team back to the tracker.

One concept a module: ``signatures`` (authentication on the raw bytes), ``payloads`` (the
trackers' JSON as tolerant Structs), ``adf`` (Atlassian Document Format to text), ``events``
(which events are classified, which ignored and why), ``trackers`` (the REST requests each
tracker takes), ``outbound`` (sending them with timeouts and bounded retries), ``intake``
(one delivery from bytes to a stored outcome), ``writeback`` (the background worker),
``errors`` (their exception tree), ``schemas`` (our response bodies) and ``routes`` (the HTTP
endpoints).
"""
