"""``storage-proxy``: one process that many workers share a database through."""

from __future__ import annotations

import argparse

from search.storage import safe_url
from search.storage.proxy import serve


def cmd_storage_proxy(args: argparse.Namespace) -> int:
    server = serve(args.storage, host=args.host, port=args.port, threads=args.threads)
    print(
        f"storage proxy for {safe_url(args.storage)} on grpc://{args.host}:{args.port} "
        "(Ctrl-C stops it)",
        flush=True,
    )
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(grace=2)
    return 0


def add(sub) -> None:
    p = sub.add_parser(
        "storage-proxy",
        help="serve a PostgreSQL/MySQL storage, and its claim lease, to many workers as "
        "grpc://HOST:PORT",
    )
    p.add_argument("--storage", required=True, help="the database URL the proxy stands for")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=13000, help="port (default 13000)")
    p.add_argument("--threads", type=int, default=32, help="requests served at once (default 32)")
    p.set_defaults(func=cmd_storage_proxy)
