"""Server programs of the local stack; each runs as ``python -m devstack.services.NAME``."""
