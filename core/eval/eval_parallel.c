/* Threads for the evaluation's passes (core/eval/eval_internal.h): a pass split into parts, each on
 * its own thread, with OpenBLAS kept to one thread so that the parts' sgemm calls run side by
 * side. The kNN and the probe's products are tall and skinny (10 columns for 10 classes):
 * OpenBLAS's own threads synchronise on every call and gain little there, while whole row
 * ranges on separate threads scale with the cores. */
#include <cblas.h>
#include <pthread.h>

#include "eval_internal.h"

struct eval_part {
    eval_task_fn task;
    void *user;
    int part;
};

static void *eval_part_main(void *arg)
{
    struct eval_part *p = arg;
    p->task(p->user, p->part);
    return NULL;
}

int eval_default_threads(void)
{
    int n = openblas_get_num_threads();
    return n < 1 ? 1 : n > EVAL_MAX_THREADS ? EVAL_MAX_THREADS : n;
}

void eval_parallel(int parts, eval_task_fn task, void *user)
{
    parts = parts < 1 ? 1 : parts > EVAL_MAX_THREADS ? EVAL_MAX_THREADS : parts;
    struct eval_part job[EVAL_MAX_THREADS];
    pthread_t tid[EVAL_MAX_THREADS];
    int started[EVAL_MAX_THREADS] = {0};
    int blas = openblas_get_num_threads();
    if (blas != 1)
        openblas_set_num_threads(1);
    for (int i = 1; i < parts; i++) {
        job[i] = (struct eval_part){task, user, i};
        started[i] = pthread_create(&tid[i], NULL, eval_part_main, &job[i]) == 0;
    }
    task(user, 0);
    for (int i = 1; i < parts; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            task(user, i); /* no thread to spare: the same work, one part after another */
    }
    if (blas != 1)
        openblas_set_num_threads(blas);
}
