"""S3 + SQS + SNS endpoint: moto in server mode on loopback.

Usage: python -m devstack.services.aws PORT
"""

from __future__ import annotations

import sys

from moto.server import main as moto_main

if __name__ == "__main__":
    moto_main(["-H", "127.0.0.1", "-p", sys.argv[1]])
