"""What the PyTorch / Pillow peers share: the thread setting tools/bench/src/torch.ts passes
(`threads` in the JSON arguments, null meaning PyTorch's default: no set_num_threads call;
OpenBLAS's own count comes from OPENBLAS_NUM_THREADS in the environment), reading the encoded
images into memory, and the timed training-step loop."""
import os
import resource
import statistics
import time


def apply_threads(args):
    """Sets PyTorch's intra-op threads as asked; returns the setting in effect, for the peer's output."""
    import torch
    t = args.get("threads")
    if t is not None:
        torch.set_num_threads(t)
    return {"torch_threads": torch.get_num_threads(), "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}


def read_blobs(files):
    """The files' bytes, read into memory first (as ours are)."""
    blobs = []
    for f in files:
        with open(f, 'rb') as fh:
            blobs.append(fh.read())
    return blobs


def time_steps(step, warmup, steps):
    """Runs step() warmup + steps times; returns the timed steps' milliseconds, the last step's
    result, and the summary fields every training peer prints (median, peak RSS)."""
    times = []
    out = None
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        out = step()
        dt = (time.perf_counter() - t0) * 1000
        if i >= warmup:
            times.append(dt)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out, {"ms": times, "median_ms": statistics.median(times), "peak_rss_mb": rss_mb}
