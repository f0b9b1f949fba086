/* Data-parallel runs (include/byol/dist.h, dist_internal.h): which processes a launcher
 * started, MPI's set-up and tear-down, and the few collectives training needs. All MPI calls
 * of the library are in this file; without MPI (BYOL_HAVE_MPI unset) a run is one process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"

#ifdef BYOL_HAVE_MPI
#include <mpi.h>
#endif

/* Elements per collective call: a bucket of gradients is 4 MiB, large enough that latency
 * does not matter and small enough that an int count always holds it. */
#define DIST_BUCKET_F32 ((size_t)1 << 20)
#define DIST_BUCKET_F64 ((size_t)1 << 19)
#define DIST_BUCKET_BYTES ((size_t)1 << 26)

static struct {
    int rank, size;
    int joined;   /* byol_dist_init joined an MPI run (comm is valid) */
    int owns_mpi; /* byol_dist_init called MPI_Init_thread, so finalize ends MPI */
#ifdef BYOL_HAVE_MPI
    MPI_Comm comm; /* a duplicate of MPI_COMM_WORLD: the library's traffic stays its own */
#endif
} dist = {.rank = 0, .size = 1};

/* ---- What the launcher says. ----------------------------------------------------------- */

/* Variables that launchers set in every process they start: the number of processes, or this
 * process's rank (PMIx exports only the rank). SLURM_STEP_NUM_TASKS is srun's, so a batch
 * script that runs byolctl directly inside an allocation of several tasks is one process. */
static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                                        "SLURM_STEP_NUM_TASKS", NULL};
static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL};

static long env_long(const char *name)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return -1;
    long x = strtol(v, &end, 10);
    return *end ? -1 : x;
}

/* 1 when a launcher started this process. When it says there are several, the variable and
 * its value go to why. */
static int launched(char *why, size_t n)
{
    int any = 0;
    why[0] = '\0';
    for (int i = 0; size_vars[i]; i++) {
        long v = env_long(size_vars[i]);
        any |= getenv(size_vars[i]) != NULL;
        if (v > 1 && !why[0])
            snprintf(why, n, "%s=%ld", size_vars[i], v);
    }
    for (int i = 0; rank_vars[i]; i++) {
        long v = env_long(rank_vars[i]);
        any |= getenv(rank_vars[i]) != NULL;
        if (v > 0 && !why[0])
            snprintf(why, n, "%s=%ld", rank_vars[i], v);
    }
    return any;
}

/* ---- Joining and leaving. -------------------------------------------------------------- */

#ifdef BYOL_HAVE_MPI
static byol_status mpi_fail(int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", rc);
    return byol_error(BYOL_ERR_IO, "MPI: %s failed on rank %d of %d: %s", what, dist.rank,
                      dist.size, text);
}

static byol_status mpi_join(int *argc, char ***argv)
{
    int inited = 0, provided = 0, rc = MPI_Initialized(&inited);
    if (rc == MPI_SUCCESS && !inited) {
        rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Init_thread");
        dist.owns_mpi = 1;
    }
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_dup(MPI_COMM_WORLD, &dist.comm);
    dist.joined = rc == MPI_SUCCESS;
    /* Failures come back as codes, so the failing process can report which call it was. */
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(dist.comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(dist.comm, &dist.rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(dist.comm, &dist.size);
    return rc == MPI_SUCCESS ? BYOL_OK : mpi_fail(rc, "joining the run");
}
#endif

byol_status byol_dist_init(int *argc, char ***argv)
{
    char why[96];
    int started = launched(why, sizeof why);
#ifdef BYOL_HAVE_MPI
    /* An embedder that initialised MPI itself is part of its run too. */
    int inited = 0;
    MPI_Initialized(&inited);
    if (started || inited)
        return dist.joined ? BYOL_OK : mpi_join(argc, argv);
    return BYOL_OK;
#else
    (void)argc;
    (void)argv;
    if (started && why[0])
        return byol_error(BYOL_ERR_UNSUPPORTED,
                          "started as one of several processes (%s), but this byol-c was built "
                          "without MPI: install an MPI library (Debian: libopenmpi-dev) and "
                          "rebuild, or run a single process",
                          why);
    return BYOL_OK;
#endif
}

int byol_dist_has_mpi(void)
{
#ifdef BYOL_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int byol_dist_rank(void)
{
    return dist.rank;
}

int byol_dist_size(void)
{
    return dist.size;
}

void byol_dist_abort(int code)
{
#ifdef BYOL_HAVE_MPI
    if (dist.size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#else
    (void)code;
#endif
}

void byol_dist_finalize(void)
{
#ifdef BYOL_HAVE_MPI
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!dist.joined || finalized)
        return;
    MPI_Comm_free(&dist.comm);
    if (dist.owns_mpi)
        MPI_Finalize();
    dist.rank = 0;
    dist.size = 1;
    dist.joined = dist.owns_mpi = 0;
#endif
}

void byol_dist_shard(int64_t global, int rank, int size, int64_t *first, int64_t *count)
{
    int64_t base = global / size, extra = global % size;
    *count = base + (rank < extra);
    *first = rank * base + (rank < extra ? rank : extra);
}

/* ---- Collectives. ---------------------------------------------------------------------- */

#ifdef BYOL_HAVE_MPI
static byol_status sum_buckets(void *buf, size_t n, size_t elem, size_t bucket, MPI_Datatype type,
                               const char *what)
{
    for (size_t at = 0; at < n; at += bucket) {
        int m = (int)(n - at < bucket ? n - at : bucket);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * elem, m, type, MPI_SUM, dist.comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, what);
    }
    return BYOL_OK;
}
#endif

/* The sums of dist_sum_f32 / dist_sum_f64: one collective per bucket. */
static byol_status dist_sum(void *buf, size_t n, int f64)
{
    if (dist.size < 2)
        return BYOL_OK;
#ifdef BYOL_HAVE_MPI
    return f64 ? sum_buckets(buf, n, sizeof(double), DIST_BUCKET_F64, MPI_DOUBLE, "a sum in double")
               : sum_buckets(buf, n, sizeof(float), DIST_BUCKET_F32, MPI_FLOAT, "the gradient sum");
#else
    (void)buf;
    (void)n;
    (void)f64;
    return BYOL_OK;
#endif
}

byol_status dist_sum_f32(float *buf, size_t n)
{
    return dist_sum(buf, n, 0);
}

byol_status dist_sum_f64(double *buf, size_t n)
{
    return dist_sum(buf, n, 1);
}

byol_status dist_broadcast(void *buf, size_t bytes)
{
    if (dist.size < 2)
        return BYOL_OK;
#ifdef BYOL_HAVE_MPI
    for (size_t at = 0; at < bytes; at += DIST_BUCKET_BYTES) {
        int m = (int)(bytes - at < DIST_BUCKET_BYTES ? bytes - at : DIST_BUCKET_BYTES);
        int rc = MPI_Bcast((char *)buf + at, m, MPI_BYTE, 0, dist.comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "the broadcast of rank 0's state");
    }
#else
    (void)buf;
    (void)bytes;
#endif
    return BYOL_OK;
}

byol_status dist_any(int flag, int *any)
{
    *any = flag != 0;
    if (dist.size < 2)
        return BYOL_OK;
#ifdef BYOL_HAVE_MPI
    int mine = *any;
    int rc = MPI_Allreduce(&mine, any, 1, MPI_INT, MPI_MAX, dist.comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "agreeing on a stop");
#endif
    return BYOL_OK;
}

byol_status dist_same_u64(uint64_t value, int *same)
{
    *same = 1;
    if (dist.size < 2)
        return BYOL_OK;
#ifdef BYOL_HAVE_MPI
    /* max(v) and max(~v) = ~min(v) in one call: equal everywhere iff max == min. */
    uint64_t mine[2] = {value, ~value}, most[2];
    int rc = MPI_Allreduce(mine, most, 2, MPI_UINT64_T, MPI_MAX, dist.comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "comparing the processes' weights");
    *same = most[0] == ~most[1];
#else
    (void)value;
#endif
    return BYOL_OK;
}

static byol_status bn_sum(void *ctx, double *buf, size_t n)
{
    (void)ctx;
    return dist_sum_f64(buf, n);
}

static const struct byol_allreduce bn_sync = {.sum_f64 = bn_sum, .ctx = NULL};

const struct byol_allreduce *dist_bn_sync(void)
{
    return dist.size > 1 ? &bn_sync : NULL;
}
