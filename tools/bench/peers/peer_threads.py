"""Thread setting shared by the PyTorch peers: `threads` from the bench's JSON arguments,
null (None) meaning PyTorch's default (no set_num_threads call). OpenBLAS's own thread count
comes from OPENBLAS_NUM_THREADS in the environment, set by tools/bench/src/torch.ts."""
import os

import torch


def apply_threads(args):
    """Sets PyTorch's intra-op threads as asked; returns the setting in effect, for the peer's output."""
    t = args.get("threads")
    if t is not None:
        torch.set_num_threads(t)
    return {"torch_threads": torch.get_num_threads(), "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
