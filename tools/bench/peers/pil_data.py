#!/usr/bin/python3
"""Pillow peer for `npm run bench -- data`: what a torchvision training transform does, per image,
in one process:

    Image.open(f).convert('RGB')                       # decode
    RandomResizedCrop(size, scale, ratio, BICUBIC)     # torchvision get_params + crop + resize
    RandomHorizontalFlip(0.5)
    ToTensor() + Normalize(mean, std)                  # float32 CHW

with numpy standing in for torch (same operations: uint8 HWC -> CHW float32 / 255, then
(x - mean) / std). The encoded bytes are read into memory first (BytesIO), as ours are.

Usage: pil_data.py '{"files": [...], "count": N, "rounds": R, "size": 224, "scale": [0.5, 1], "ratio": [0.75, 1.333], "seed": 0}'
Prints one JSON line: {"pil_version", "images", "rounds": [images/s per round], "images_per_s": best round}.
"""
import io
import json
import math
import random
import sys
import time

import numpy as np
from PIL import Image, __version__ as PIL_VERSION

from peer_common import read_blobs


def get_params(rnd, width, height, scale, ratio):
    """torchvision.transforms.RandomResizedCrop.get_params (python random instead of torch.rand)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rnd.uniform(scale[0], scale[1])
        aspect_ratio = math.exp(rnd.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = rnd.randint(0, height - h)
            j = rnd.randint(0, width - w)
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w = width
        h = height
    return (height - h) // 2, (width - w) // 2, h, w


def transform(data, rnd, size, scale, ratio, mean, std):
    img = Image.open(io.BytesIO(data)).convert('RGB')
    i, j, h, w = get_params(rnd, img.width, img.height, scale, ratio)
    img = img.crop((j, i, j + w, i + h)).resize((size, size), Image.BICUBIC)  # F.resized_crop
    if rnd.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    x = np.ascontiguousarray(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)).astype(np.float32)
    x /= 255.0  # ToTensor
    x -= mean  # Normalize
    x /= std
    return x


def main():
    args = json.loads(sys.argv[1])
    blobs = read_blobs(args['files'])
    size = args.get('size', 224)
    scale = args.get('scale', [0.5, 1.0])
    ratio = args.get('ratio', [3 / 4, 4 / 3])
    mean = np.array(args.get('mean', [0.5, 0.5, 0.5]), np.float32).reshape(3, 1, 1)
    std = np.array(args.get('std', [0.5, 0.5, 0.5]), np.float32).reshape(3, 1, 1)
    count = args['count']
    rnd = random.Random(args.get('seed', 0))
    for b in blobs[: min(len(blobs), 16)]:  # warm-up
        transform(b, rnd, size, scale, ratio, mean, std)
    rates = []
    checksum = 0.0
    for _ in range(args.get('rounds', 1)):
        t0 = time.perf_counter()
        for k in range(count):
            x = transform(blobs[k % len(blobs)], rnd, size, scale, ratio, mean, std)
            checksum += float(x[0, 0, 0])
        rates.append(count / (time.perf_counter() - t0))
    print(json.dumps({'pil_version': PIL_VERSION, 'images': count, 'rounds': rates, 'images_per_s': max(rates), 'checksum': checksum}))


if __name__ == '__main__':
    main()
