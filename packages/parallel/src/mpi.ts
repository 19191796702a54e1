/**
 * The `mpi` backend: OpenMPI (any MPI-3 library) through the native addon, for jobs started
 * with `mpirun -np N node script.js` (ranks read OMPI_COMM_WORLD_*), on one machine or many.
 * Available when the addon was built with MPI found (Debian: libopenmpi-dev). Collectives
 * poll non-blocking MPI calls against the timeout; a timeout aborts the job (MPI cannot
 * cancel a collective), and mpirun stops every rank when one dies.
 */
import { native } from '@vlmoe/native-cuda';
import { NativeProcessGroup } from './native_process_group.js';

let world: MpiProcessGroup | null = null;

export function mpiAvailable(): boolean {
  return native.mpiAvailable();
}

export class MpiProcessGroup extends NativeProcessGroup {
  readonly backend = 'mpi';

  private constructor(id: number, ranks: readonly number[] | undefined, timeoutMs: number) {
    super(id, ranks, timeoutMs);
  }

  /** The world of this mpirun job (MPI is initialised once per process). */
  static world(timeoutMs = 120_000): MpiProcessGroup {
    if (!native.mpiAvailable()) throw new Error("the 'mpi' backend is not in this build: install libopenmpi-dev (Debian) and rebuild @vlmoe/native-cuda");
    if (world && world.id >= 0) return world;
    world = new MpiProcessGroup(native.commInitMpi(timeoutMs), undefined, timeoutMs);
    // a rank leaving with an error status takes the job down at once (MPI_Abort), instead of
    // finalising as if all were well and leaving its peers to time out
    const w = world;
    process.on('exit', (code) => {
      if (code !== 0 && w.id >= 0) native.commAbort(w.id, `rank ${w.rank} exited with status ${code}`);
    });
    return world;
  }

  newGroup(ranks: readonly number[]): MpiProcessGroup | null {
    const sorted = this.checkRanks(ranks);
    const id = native.commNewGroup(this.live, sorted);
    if (id < 0) return null;
    return new MpiProcessGroup(id, sorted.map((r) => this.ranks[r]!), this.timeoutMs);
  }
}
