#!/usr/bin/env node
// Builds the optional native JPEG path (native/) when libjpeg-turbo's TurboJPEG headers are
// installed (Debian/Ubuntu: apt-get install libturbojpeg0-dev). Without them @vlmoe/data
// still works: sharp decodes every image (slower on JPEG crops). VLMOE_IMAGE_NATIVE=0 skips.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dirs = ['/usr/include', '/usr/local/include', '/usr/include/x86_64-linux-gnu', '/usr/include/aarch64-linux-gnu', '/opt/homebrew/include'];
if (process.env.VLMOE_IMAGE_NATIVE === '0') {
  console.log('@vlmoe/data: VLMOE_IMAGE_NATIVE=0, native JPEG path not built');
} else if (!dirs.some((d) => existsSync(join(d, 'turbojpeg.h')))) {
  console.log('@vlmoe/data: turbojpeg.h not found (apt-get install libturbojpeg0-dev): JPEGs will be decoded by sharp (slower); the native path is skipped');
} else {
  const r = spawnSync('npx', ['cmake-js', 'compile', '-d', 'native', '--out', 'native/build'], { cwd: root, stdio: 'inherit', env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: '2' } });
  if (r.status !== 0) {
    console.error('@vlmoe/data: building the native JPEG path failed (see above); set VLMOE_IMAGE_NATIVE=0 to build without it');
    process.exit(r.status ?? 1);
  }
}
