"""The predictor's HTTP side: wire guards, ASGI middleware, routes, error handlers and the KServe adapter.

``wire`` guards the connection below HTTP (header timeout and size), ``middleware`` each request (body limit,
body timeout, concurrency, last-resort errors, drain), ``routes`` adds our routes, ``errors`` maps exceptions
to one-line JSON answers, and ``kserve_app`` is the only module touching KServe's private API.
"""
