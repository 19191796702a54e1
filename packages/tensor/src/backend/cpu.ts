/** The CPU backend: every kernel, through the native addon's CPU paths. */
import * as k from './kernels.js';
import { registerBackend } from './registry.js';

registerBackend('cpu', k);
