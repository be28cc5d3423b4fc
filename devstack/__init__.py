"""The local finance stack: real protocol servers on 127.0.0.1 standing in for production.

``python -m devstack up|down|status|env|verify-down``. Everything lives under ``.local/``.
"""
