/* Data-parallel training over processes (MPI): joining the run a launcher started, this
 * process's place in it, ending it, and the distributed sampler's split of a global batch.
 * `mpirun -np N byolctl run CFG` trains one model on N processes: each takes a slice of every
 * global batch (train.batch_size), gradients are summed over all of them, and every process
 * keeps identical weights (see the README's "Distributed training"). A build without MPI is
 * always one process. */
#ifndef BYOL_DIST_H
#define BYOL_DIST_H

#include <stdint.h>

#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Join the run this process was started in. A process started by a launcher (mpirun, mpiexec,
 * srun: its environment has OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMI_RANK, PMIX_RANK,
 * MV2_COMM_WORLD_SIZE or SLURM_STEP_NUM_TASKS) initialises MPI (MPI_THREAD_FUNNELED: only the
 * calling thread communicates), unless the embedder already did; a plain start is one process
 * and never touches MPI. In a build without MPI, a start as one of several processes fails
 * with a message naming the variable. argc / argv (may be NULL) go to MPI_Init_thread. Call it
 * once, from the main thread, before building anything. */
BYOL_API byol_status byol_dist_init(int *argc, char ***argv);
/* 1 when the library was built with MPI. */
BYOL_API int byol_dist_has_mpi(void);
/* This process's rank (0 .. size - 1) and the number of processes: 0 and 1 before
 * byol_dist_init and in a run of one process. */
BYOL_API int byol_dist_rank(void);
BYOL_API int byol_dist_size(void);
/* End every process of the run at once with exit status `code` (MPI_Abort): for a process
 * that failed while the others may be waiting for it. Returns, doing nothing, when the run is
 * one process: the caller then exits as usual. Only a program (byolctl) should call it; the
 * library never ends the process by itself. */
BYOL_API void byol_dist_abort(int code);
/* Leave the run (MPI_Finalize, when byol_dist_init initialised MPI); waits for the other
 * processes to leave too. A no-op in a run of one process. */
BYOL_API void byol_dist_finalize(void);

/* The distributed sampler: of each global batch of `global` images, process `rank` of `size`
 * takes the `*count` images from position `*first` on. Slices are contiguous and in rank
 * order, and the first global % size processes take one image more. */
BYOL_API void byol_dist_shard(int64_t global, int rank, int size, int64_t *first, int64_t *count);

#ifdef __cplusplus
}
#endif
#endif
