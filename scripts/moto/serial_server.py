"""The AWS emulator (moto server) with DynamoDB's writes made atomic.

DynamoDB applies each write, conditional checks included, atomically, and a transaction
sees no other write between its checks and its writes. moto's threaded server does not:
two conditional writes on one item can both pass their check, and a failed
`TransactWriteItems` restores a copy of the whole table taken before it ran, undoing
writes that other requests made meanwhile. The platform relies on DynamoDB's guarantee
(a trainer run claims a request with a conditional write; duplicates are refused with
one), so the tests run moto with DynamoDB requests taken one at a time, and every other
service as moto serves it.

Usage: serial_server.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
dynamodb = threading.Lock()


def serial(environ, start_response):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target.startswith("DynamoDB_"):
        return app(environ, start_response)
    with dynamodb:
        # The body is read inside the lock: moto may build it while it is read.
        result = app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            if hasattr(result, "close"):
                result.close()


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serial, threaded=True, request_handler=MotoRequestHandler)
