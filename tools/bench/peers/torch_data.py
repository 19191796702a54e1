#!/usr/bin/python3
"""PyTorch DataLoader peer for `npm run bench -- data`: the loader a PyTorch user trains with.

    Dataset.__getitem__:  Image.open(BytesIO(blob)).convert('RGB')
                          torchvision.transforms.Compose([RandomResizedCrop(size, scale, ratio, BICUBIC),
                                                          RandomHorizontalFlip(), ToTensor(),
                                                          Normalize(mean, std)])
    DataLoader(dataset, batch_size=32, num_workers=W, persistent_workers=True)  # default collate

over the same JPEG bytes as ours, read into memory first (each worker gets the list when it
forks). One warm-up epoch starts the workers; then `rounds` epochs of `count` images are timed.
Debian's python3-torch and python3-torchvision (0.14) for /usr/bin/python3.

Usage: torch_data.py '{"files": [...], "count": N, "rounds": R, "workers": 2, "batch": 32, "size": 224, ...}'
Prints one JSON line: {"torch_version", "torchvision_version", "images", "rounds": [images/s], "images_per_s": best}.
"""
import io
import json
import sys
import time

import torch
import torchvision
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from peer_common import read_blobs


class Blobs(torch.utils.data.Dataset):
    def __init__(self, blobs, count, transform):
        self.blobs, self.count, self.transform = blobs, count, transform

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        img = Image.open(io.BytesIO(self.blobs[i % len(self.blobs)])).convert('RGB')
        return self.transform(img)


def main():
    a = json.loads(sys.argv[1])
    blobs = read_blobs(a['files'])
    torch.manual_seed(a.get('seed', 0))
    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.get('size', 224), scale=tuple(a.get('scale', [0.5, 1.0])), ratio=tuple(a.get('ratio', [3 / 4, 4 / 3])),
                                     interpolation=InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(0.5),
        transforms.ToTensor(),
        transforms.Normalize(a.get('mean', [0.5, 0.5, 0.5]), a.get('std', [0.5, 0.5, 0.5])),
    ])
    workers = a.get('workers', 2)
    loader = torch.utils.data.DataLoader(Blobs(blobs, a['count'], tf), batch_size=a.get('batch', 32), num_workers=workers,
                                         persistent_workers=workers > 0)
    sink = 0.0
    for x in loader:  # warm-up epoch: worker start, imports, allocator
        sink += float(x[0, 0, 0, 0])
    rates = []
    for _ in range(a.get('rounds', 1)):
        t0 = time.perf_counter()
        n = 0
        for x in loader:
            n += x.shape[0]
            sink += float(x[0, 0, 0, 0])
        rates.append(n / (time.perf_counter() - t0))
    print(json.dumps({'torch_version': torch.__version__, 'torchvision_version': torchvision.__version__, 'workers': workers,
                      'images': a['count'], 'rounds': rates, 'images_per_s': max(rates), 'checksum': sink}))


if __name__ == '__main__':
    main()
