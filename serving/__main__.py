"""``python -m serving [--host 127.0.0.1] [--port 8000] [--models-dir DIR] [--threads N]``: run the service."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Load and verify the model directories, then serve them with uvicorn until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    parser.add_argument("--models-dir", default=None, help="folder holding churn/ and ants_bees/ "
                        "(default: DL_MODELS_DIR, else models/ in the repository)")
    parser.add_argument("--threads", type=int, default=1,
                        help="PyTorch threads per request (default 1: concurrent requests already run in parallel "
                             "threads, and on a busy machine more threads per request stall small models)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    import torch
    import uvicorn

    from dl_utils import export

    from .app import create_app

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        app = create_app(args.models_dir)
    except export.ModelDirError as exc:
        print(f"error: the service cannot start: {exc}", file=sys.stderr)
        return 2
    for name, p in app.state.predictors.items():
        print(f"loaded {name} (version {p.version}, {p.md.manifest.get('profile')} profile) from "
              f"{export.shown(p.md.path)}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
