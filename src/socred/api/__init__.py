"""The HTTP API (http.md): FastAPI routers under ``/api/v1``, authentication, the access log, operations.

``socred serve`` runs :func:`socred.api.app.create_app` with uvicorn.
"""
