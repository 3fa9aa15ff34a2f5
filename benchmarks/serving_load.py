"""A bounded load test of the model service (serving/) on the loopback interface. Not a pytest test.

Starts ``python -m serving`` in a subprocess on a free 127.0.0.1 port, then sends a fixed number of
requests per scenario (stopping early when a scenario's time budget runs out), first one at a time
(latency) and then from several client threads (throughput):

* churn, one record per request;
* churn, a batch of ``--batch`` records per request;
* image, one photo per request (the model's example photos, else a synthetic JPEG).

For each it reports requests/s, rows/s and p50/p99 latency, and the cost of the HTTP layer: the
median latency over HTTP divided by the median time of the same prediction in-process (the same
predictor classes, same rows, same PyTorch thread count). Run from the repository root:

    .venv/bin/python benchmarks/serving_load.py [--models-dir models/local] [--requests 200]
        [--image-requests 60] [--batch 100] [--concurrency 8] [--budget 20] [--threads 1] [--json out.json]

The numbers depend on the machine and its load; the client and the server share its cores. The server
handle and the timing loops live in ``serving.client`` (notebook 23 uses them too).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from dl_utils import export
from serving import load_models
from serving.client import ServerError, in_process_ms, run_load, start_server
from serving.predictors import inspect_image


def photos(md: export.ModelDir) -> list[bytes]:
    """The model's example photos (from the dataset cache or mirror), else one synthetic JPEG."""
    try:
        from dl_utils import data

        root = data.fetch(md.examples["inputs"][0].get("dataset", "hymenoptera"))
        return [(root / e["path"]).read_bytes() for e in md.examples["inputs"]]
    except Exception as exc:  # no dataset here: a stand-in photo still measures the service
        print(f"(example photos unavailable: {type(exc).__name__}; using a synthetic 500×375 JPEG)")
        from PIL import Image

        rng = np.random.default_rng(0)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=90)
        return [buf.getvalue()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="default: DL_MODELS_DIR, else models/")
    parser.add_argument("--requests", type=int, default=200, help="churn requests per scenario and concurrency")
    parser.add_argument("--image-requests", type=int, default=60, help="image requests per concurrency")
    parser.add_argument("--batch", type=int, default=100, help="records per batched churn request")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads for the throughput runs")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per scenario and concurrency, at most")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads, server and in-process alike")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    models_dir = (args.models_dir or export.models_dir()).resolve()
    torch.set_num_threads(args.threads)
    predictors, missing = load_models(models_dir)
    for name, why in missing.items():
        print(f"skipping {name}: {why}")
    if not predictors:
        return 1
    try:
        server = start_server(models_dir, threads=args.threads, log_level="warning")
    except ServerError as exc:
        raise SystemExit(str(exc)) from None
    url = server.url
    rows_out: list[dict[str, Any]] = []
    try:
        client = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=args.concurrency * 2))
        scenarios = []
        churn = predictors.get("churn")
        if churn is not None:
            records = churn.md.examples["inputs"]
            batch = [records[i % len(records)] for i in range(args.batch)]
            scenarios.append(("churn, 1 record", 1, args.requests,
                              lambda i: client.post("/predict/churn", json=records[i % len(records)]).status_code == 200,
                              lambda i: churn.predict([records[i % len(records)]])))
            scenarios.append((f"churn, batch of {args.batch}", args.batch, max(1, args.requests // 4),
                              lambda i: client.post("/predict/churn", json=batch).status_code == 200,
                              lambda i: churn.predict(batch)))
        image = predictors.get("ants_bees")
        if image is not None:
            pics = photos(image.md)

            def post_image(i: int) -> bool:
                files = {"file": ("photo.jpg", pics[i % len(pics)], "image/jpeg")}
                return client.post("/predict/image", files=files, params={"top_k": 2}).status_code == 200

            def image_in_process(i: int) -> np.ndarray:
                inspect_image(pics[i % len(pics)])
                return image.predict_proba(pics[i % len(pics)])

            scenarios.append(("image, 1 photo", 1, args.image_requests, post_image, image_in_process))

        for name, rows, n, http_call, local_call in scenarios:
            local = in_process_ms(local_call, n, args.budget)
            run_load(http_call, min(n, 10), 1, args.budget)   # warm-up: connections, first-call costs
            for concurrency in (1, args.concurrency):
                r = run_load(http_call, n, concurrency, args.budget)
                r.pop("latencies_ms")
                rows_out.append({"scenario": name, "concurrency": concurrency, "rows_per_request": rows, **r,
                                 "rows_per_s": r["requests_per_s"] * rows, "in_process_p50_ms": local,
                                 "http_over_in_process": r["p50_ms"] / local})
        client.close()
    finally:
        server.stop()

    head = (f"{'scenario':<22} {'conc':>4} {'requests':>8} {'fail':>4} {'req/s':>8} {'rows/s':>9} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'in-proc ms':>10} {'HTTP/in-proc':>12}")
    print(f"service on {url.split('//')[1]} ({platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{args.threads}); models from {export.shown(models_dir)}")
    print(head)
    print("-" * len(head))
    for r in rows_out:
        print(f"{r['scenario']:<22} {r['concurrency']:>4} {r['requests']:>8} {r['failures']:>4} "
              f"{r['requests_per_s']:>8.1f} {r['rows_per_s']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['in_process_p50_ms']:>10.2f} {r['http_over_in_process']:>11.1f}x")
    print("HTTP/in-proc: median HTTP latency / median in-process time of the same prediction (one call at a time). "
          "At concurrency 1 it is the cost of the HTTP layer (client, uvicorn, FastAPI, JSON or multipart, "
          "validation); at higher concurrency it also holds the time requests wait for a free core.")
    if args.json:
        args.json.write_text(json.dumps({"models_dir": export.shown(models_dir), "threads": args.threads,
                                         "cpu_count": os.cpu_count(), "results": rows_out}, indent=1) + "\n")
        print(f"written to {args.json}")
    return 0 if all(r["failures"] == 0 for r in rows_out) else 1


if __name__ == "__main__":
    sys.exit(main())
