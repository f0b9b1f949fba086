/* The views of a training batch (two global ones, and a multi-crop run's local ones), read
 * and augmented image by image on the pool's threads (include/byol/augment.h,
 * byol_augment_views_batch_n). Two paths:
 *  - from the originals: when the dataset keeps image files (folder) and every view begins with
 *    an op that crops a region (random_resized_crop), each view's region is drawn from the
 *    original's size, the file is read once and decoded once for all (a JPEG at the smallest
 *    DCT scale that keeps every region at least its output size, and only the rows and columns
 *    the regions cover), each region resampled straight to its output, then the rest of each
 *    pipeline runs;
 *  - at the dataset's shape: byol_dataset_get, the channels repeated to the pipelines' when the
 *    data has one, then every pipeline, as byol-pytorch does.
 * Either way image b of view v draws from the stream (seed, step, first + b, v), so who runs
 * it, and how many processes share the batch, never matters. */
#include <stdlib.h>
#include <string.h>

#include "augment_pool_internal.h"
#include "byol/augment.h"
#include "dataset_internal.h"
#include "image_internal.h"

struct views_job {
    const struct byol_dataset *ds;
    const size_t *indices;
    struct byol_augment_pipeline *const *views;
    float *const *out;
    size_t first;
    uint64_t seed, step;
    int nviews;
    int from_originals;
    int channels;                                /* the pipelines' */
    size_t out_floats[BYOL_AUGMENT_MAX_VIEWS]; /* per image of each view */
    size_t pipe_scratch;  /* scratch floats: pipelines, then the image, the raw read, a region */
    size_t image_floats, raw_floats, region_floats;
};

static void views_rng(const struct views_job *j, size_t b, int v, struct byol_rng *rng)
{
    byol_augment_rng(rng, j->seed, j->step, j->first + b, v + 1);
}

/* The largest n/8 that can be skipped: the smallest n in 1..8 that keeps every region at least
 * its output size (so the decoder's scaling never upsamples what resampling then shrinks). */
static int views_scale(int nviews, const int box[][4], const int size[][2])
{
    for (int n = 1; n < 8; n++) {
        int ok = 1;
        for (int v = 0; v < nviews; v++)
            ok &= box[v][2] * n >= size[v][0] * 8 && box[v][3] * n >= size[v][1] * 8;
        if (ok)
            return n;
    }
    return 8;
}

/* The rectangle x0 y0 x1 y1 that holds every view's region (top, left, height, width). */
static void views_union(int nviews, const int box[][4], int rect[4])
{
    rect[0] = box[0][1];
    rect[1] = box[0][0];
    rect[2] = box[0][1] + box[0][3];
    rect[3] = box[0][0] + box[0][2];
    for (int v = 1; v < nviews; v++) {
        rect[0] = box[v][1] < rect[0] ? box[v][1] : rect[0];
        rect[1] = box[v][0] < rect[1] ? box[v][0] : rect[1];
        rect[2] = box[v][1] + box[v][3] > rect[2] ? box[v][1] + box[v][3] : rect[2];
        rect[3] = box[v][0] + box[v][2] > rect[3] ? box[v][0] + box[v][2] : rect[3];
    }
}

static byol_status views_from_original(const struct views_job *j, size_t b, float *scratch)
{
    struct byol_image_file f;
    byol_status st = j->ds->ops->original(j->ds, j->indices[b], &f);
    if (st != BYOL_OK)
        return st;
    struct byol_rng rng[BYOL_AUGMENT_MAX_VIEWS];
    int box[BYOL_AUGMENT_MAX_VIEWS][4], size[BYOL_AUGMENT_MAX_VIEWS][2], c, rect[4];
    for (int v = 0; v < j->nviews && st == BYOL_OK; v++) {
        views_rng(j, b, v, &rng[v]);
        byol_augment_pipeline_region_shape(j->views[v], &c, &size[v][0], &size[v][1]);
        st = byol_augment_pipeline_region(j->views[v], f.h, f.w, &rng[v], box[v]);
    }
    struct byol_image_part part = {0};
    if (st == BYOL_OK) {
        views_union(j->nviews, box, rect);
        st = byol_image_decode_part(&f, j->channels, views_scale(j->nviews, box, size), rect,
                                    &part);
    }
    byol_image_file_free(&f);
    float *region = scratch + j->pipe_scratch + j->image_floats + j->raw_floats;
    for (int v = 0; v < j->nviews && st == BYOL_OK; v++) {
        st = byol_image_part_resample(&part, box[v], size[v][0], size[v][1], region);
        if (st == BYOL_OK)
            st = byol_augment_pipeline_apply_after_region(
                j->views[v], region, j->out[v] + b * j->out_floats[v], scratch, &rng[v]);
    }
    free(part.img.px);
    return st;
}

static byol_status views_from_dataset(const struct views_job *j, size_t b, float *scratch)
{
    float *image = scratch + j->pipe_scratch, *raw = image + j->image_floats;
    int ch, h, w;
    byol_dataset_shape(j->ds, &ch, &h, &w);
    byol_status st = byol_dataset_get(j->ds, j->indices[b], raw);
    size_t plane = (size_t)h * (size_t)w;
    /* Grayscale into a multi-channel encoder: the same plane in every channel. */
    for (int k = 0; k < j->channels && st == BYOL_OK; k++)
        memcpy(image + (size_t)k * plane, raw + (ch == 1 ? 0 : (size_t)k * plane),
               plane * sizeof(float));
    for (int v = 0; v < j->nviews && st == BYOL_OK; v++) {
        struct byol_rng rng;
        views_rng(j, b, v, &rng);
        st = byol_augment_pipeline_apply(j->views[v], image, j->out[v] + b * j->out_floats[v],
                                         scratch, &rng);
    }
    return st;
}

static byol_status views_image(void *ctx, size_t b, float *scratch)
{
    const struct views_job *j = ctx;
    return j->from_originals ? views_from_original(j, b, scratch)
                             : views_from_dataset(j, b, scratch);
}

int byol_augment_views_from_originals_n(const struct byol_dataset *ds, int nviews,
                                        struct byol_augment_pipeline *const *views,
                                        int resize_first)
{
    int c, h, w, ch;
    if (!ds || !views || nviews < 1 || resize_first || !ds->ops->original)
        return 0;
    byol_dataset_shape(ds, &ch, NULL, NULL);
    for (int v = 0; v < nviews; v++) {
        byol_augment_pipeline_input(views[v], &c, NULL, NULL);
        if (c != ch || !byol_augment_pipeline_region_shape(views[v], &c, &h, &w))
            return 0;
    }
    return 1;
}

int byol_augment_views_from_originals(const struct byol_dataset *ds,
                                      struct byol_augment_pipeline *const views[2],
                                      int resize_first)
{
    return byol_augment_views_from_originals_n(ds, 2, views, resize_first);
}

static size_t views_floats(const struct byol_augment_pipeline *p, int output)
{
    int c, h, w;
    if (output)
        byol_augment_pipeline_output(p, &c, &h, &w);
    else
        byol_augment_pipeline_input(p, &c, &h, &w);
    return (size_t)c * (size_t)h * (size_t)w;
}

byol_status byol_augment_views_batch_n(struct byol_augment_pool *pool,
                                       const struct byol_dataset *ds, const size_t *indices,
                                       size_t n, size_t first, int nviews,
                                       struct byol_augment_pipeline *const *views,
                                       int resize_first, uint64_t seed, uint64_t step,
                                       float *const *out)
{
    int ok = pool && ds && views && out && nviews >= 2 && nviews <= BYOL_AUGMENT_MAX_VIEWS &&
             (!n || indices);
    for (int v = 0; ok && v < nviews; v++)
        ok = views[v] && (!n || out[v]);
    if (!ok)
        return byol_error(BYOL_ERR_INVALID,
                          "byol_augment_views_batch_n: NULL argument or not 2..%d views",
                          BYOL_AUGMENT_MAX_VIEWS);
    int c, h, w, ch, dh, dw;
    byol_dataset_shape(ds, &ch, &dh, &dw);
    for (int v = 0; v < nviews; v++) {
        byol_augment_pipeline_input(views[v], &c, &h, &w);
        if ((ch != c && ch != 1) || h != dh || w != dw)
            return byol_error(BYOL_ERR_SHAPE, "view %d takes %dx%dx%d images; the data has %dx%dx%d",
                              v + 1, c, h, w, ch, dh, dw);
    }
    struct views_job j = {.ds = ds,
                          .indices = indices,
                          .views = views,
                          .out = out,
                          .first = first,
                          .seed = seed,
                          .step = step,
                          .nviews = nviews,
                          .from_originals = byol_augment_views_from_originals_n(ds, nviews, views,
                                                                                resize_first),
                          .image_floats = views_floats(views[0], 0),
                          .raw_floats = (size_t)ch * (size_t)dh * (size_t)dw};
    byol_augment_pipeline_input(views[0], &j.channels, NULL, NULL);
    for (int v = 0; v < nviews; v++) {
        int vc;
        byol_augment_pipeline_input(views[v], &vc, NULL, NULL);
        if (vc != j.channels)
            return byol_error(BYOL_ERR_SHAPE, "the views take %d and %d channels", j.channels,
                              vc);
        j.out_floats[v] = views_floats(views[v], 1);
        size_t s = byol_augment_pipeline_scratch(views[v]);
        j.pipe_scratch = s > j.pipe_scratch ? s : j.pipe_scratch;
        int rc, rh, rw;
        if (byol_augment_pipeline_region_shape(views[v], &rc, &rh, &rw) &&
            (size_t)rc * rh * rw > j.region_floats)
            j.region_floats = (size_t)rc * rh * rw;
    }
    return byol_augment_pool_run(
        pool, n, j.pipe_scratch + j.image_floats + j.raw_floats + j.region_floats, views_image, &j);
}

byol_status byol_augment_views_batch(struct byol_augment_pool *pool, const struct byol_dataset *ds,
                                     const size_t *indices, size_t n, size_t first,
                                     struct byol_augment_pipeline *const views[2], int resize_first,
                                     uint64_t seed, uint64_t step, float *const out[2])
{
    return byol_augment_views_batch_n(pool, ds, indices, n, first, 2, views, resize_first, seed,
                                      step, out);
}
