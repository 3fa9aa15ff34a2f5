"""The REST service for the models the notebooks export (FastAPI, served by uvicorn).

``make serve`` (or ``python -m serving``) starts it on 127.0.0.1:8000; ``create_app()`` builds the
application for tests and other servers. See :mod:`serving.app` for the endpoints and
:mod:`dl_utils.export` for the model directories it reads.
"""

from .app import create_app, load_models

__all__ = ["create_app", "load_models"]
