/* The augmentation interface: ops that plugins register (kind BYOL_PLUGIN_AUGMENT), and the
 * pipelines (augment_fn, augment_fn2) that the core builds from them and runs on worker threads.
 *
 * An image is float32, plain C x H x W, values in [0, 1] until a normalize op. An op is created
 * once from its own config group ({ op = "color_jitter"; brightness = 0.4; ... }) and the shape
 * of the images it will receive, then applied to many images from many threads at once. All of
 * an op's randomness comes from the struct byol_rng passed to apply: that stream belongs to one
 * image and one view, so results are a pure function of (seed, step, image index, view). */
#ifndef BYOL_AUGMENT_H
#define BYOL_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "byol/plugin.h"
#include "byol/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an op is created for: the shape of its input images and the model's image size. */
struct byol_augment_info {
    int channels; /* C of the images the op receives (1 or 3 for the standard ops) */
    int height;   /* H and W of the images the op receives */
    int width;
    int image_size; /* model.image_size: what crops and resizes produce unless told otherwise */
};

struct byol_augment_ops {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name; /* the `op` value in the config, e.g. "color_jitter" */
    const char *version;
    const char *description;

    /* Validate `settings` (the op's whole group, `op` key included: allow it in
     * host->setting_check_keys) for images of `info` and make the op's state. Fail with
     * host->setting_error / the host->setting_* accessors, so messages read
     * "FILE:LINE: augment_fn[2].p: must be in [0, 1]". The settings are borrowed for this call
     * only: copy what you need. */
    byol_status (*create)(const struct byol_host_api *host, const struct byol_settings *settings,
                          const struct byol_augment_info *info, void **state);
    /* (optional) The shape of the output for the info given to create. NULL: same as input. */
    void (*output_shape)(const void *state, int *c, int *h, int *w);
    /* Augment one image: `in` has the shape of create's info, `out` (never `in`) the output
     * shape. Called from several threads at once with the same state: treat it as read-only
     * (scratch memory comes from host->alloc, or the stack for small buffers). Draw every random
     * number from `rng`, in an order that depends only on the draws themselves. */
    byol_status (*apply)(const void *state, const float *in, float *out, struct byol_rng *rng);
    /* Free the state. NULL is a no-op. */
    void (*destroy)(void *state);

    /* ---- appended in ABI 1.1 ---- */

    /* (optional) For an op that crops a region and resizes it to its output shape (such as
     * random_resized_crop), when it is the first op of a pipeline: draw from `rng`, exactly as
     * apply would, the region it would crop from an image of in_h x in_w pixels (any size, not
     * only create's) as box = {top, left, height, width} inside that image. A dataset that keeps
     * larger originals (data.format = "folder") then resamples that region of the original
     * straight to the output shape, and the pipeline goes on after this op with the same
     * stream, so a view never passes through a shrunk copy of the image. */
    byol_status (*region)(const void *state, int in_h, int in_w, struct byol_rng *rng,
                          int box[4]);
};

/* ---- pipelines (the core) -------------------------------------------------------------- */

struct byol_registry;
struct byol_settings;
struct byol_augment_pipeline;
struct byol_augment_pool;

/* The purpose word of the augmentation streams: image b of view v (1 or 2) at step s draws from
 * byol_rng_init(seed, byol_rng_stream_id(s, b, v, BYOL_AUGMENT_STREAM)). */
#define BYOL_AUGMENT_STREAM UINT64_C(0x4155474d) /* "AUGM" */

/* Build a pipeline from the setting `name` of group `parent` (e.g. root, "augment_fn"): a list
 * of op groups (an empty list is the identity), or a string naming a preset
 * ("byol_pytorch_default", "byol_paper"). Not set: the identity. `view` (1 or 2) picks the half
 * of an asymmetric preset (byol_paper). Ops are looked up in `reg` by name (loading
 * byol-augment-*.so as needed; a name with a '/' or ending in .so is a plugin file);
 * { op = "random_apply"; p = 0.8; ops = ( ... ); } is handled by the core itself, its nested
 * list built from the same registry, and must keep the image shape. Errors name the config file
 * and line. The pipeline does not keep the settings. */
BYOL_API byol_status byol_augment_pipeline_create(struct byol_registry *reg,
                                                  const struct byol_settings *parent,
                                                  const char *name, int view,
                                                  const struct byol_augment_info *in,
                                                  struct byol_augment_pipeline **out);
/* A preset by name for view 1 or 2 (see the README for what each holds). On 1-channel images
 * the presets leave out what torchvision would make a no-op there (saturation, hue,
 * grayscale) and normalise with the average of ImageNet's channel means and stds (0.449 and
 * 0.226); other channel counts fail at the preset's normalize. */
BYOL_API byol_status byol_augment_pipeline_preset(struct byol_registry *reg, const char *name,
                                                  int view, const struct byol_augment_info *in,
                                                  struct byol_augment_pipeline **out);
/* The config text a preset is built from, "augment = ( ...ops... );", for `view` and images
 * of `in`, into buf (n >= 2048 bytes): what byol_augment_pipeline_preset parses, for callers
 * that read a preset's ops (the eval transform takes its normalize). BYOL_ERR_NOT_FOUND for
 * an unknown name. */
BYOL_API byol_status byol_augment_preset_text(const char *name, int view,
                                              const struct byol_augment_info *in, char *buf,
                                              size_t n);
/* The two views from a config root: augment_fn (default: the identity) and augment_fn2
 * (default: augment_fn, as view 2). */
BYOL_API byol_status byol_augment_views_create(struct byol_registry *reg,
                                               const struct byol_settings *root,
                                               const struct byol_augment_info *in,
                                               struct byol_augment_pipeline *views[2]);
/* NULL is a no-op. */
BYOL_API void byol_augment_pipeline_free(struct byol_augment_pipeline *p);
/* The shape of the pipeline's output images; any pointer may be NULL. */
BYOL_API void byol_augment_pipeline_output(const struct byol_augment_pipeline *p, int *c, int *h,
                                           int *w);
/* The shape of the images the pipeline was built for; any pointer may be NULL. */
BYOL_API void byol_augment_pipeline_input(const struct byol_augment_pipeline *p, int *c, int *h,
                                          int *w);
/* Number of ops at the top level (0 for the identity). */
BYOL_API int byol_augment_pipeline_length(const struct byol_augment_pipeline *p);
/* Floats of scratch that byol_augment_pipeline_apply needs. */
BYOL_API size_t byol_augment_pipeline_scratch(const struct byol_augment_pipeline *p);
/* Augment one image with the stream `rng`. `scratch` holds byol_augment_pipeline_scratch()
 * floats and must not overlap in or out. Thread-safe for distinct scratch buffers. */
BYOL_API byol_status byol_augment_pipeline_apply(const struct byol_augment_pipeline *p,
                                                 const float *in, float *out, float *scratch,
                                                 struct byol_rng *rng);

/* A pool of worker threads for whole batches. threads >= 1 (1: run on the caller's thread). */
BYOL_API byol_status byol_augment_pool_create(int threads, struct byol_augment_pool **out);
/* Joins the threads. NULL is a no-op. */
BYOL_API void byol_augment_pool_free(struct byol_augment_pool *pool);
/* Augment n images (in: n images of the pipeline's input shape, out: n of its output shape):
 * image b draws from the stream of (seed, step, b, view) above, so the result is the same for
 * every thread count. Not reentrant: one batch at a time per pool. */
BYOL_API byol_status byol_augment_batch(struct byol_augment_pool *pool,
                                        const struct byol_augment_pipeline *p, const float *in,
                                        size_t n, float *out, uint64_t seed, uint64_t step,
                                        int view);
/* byol_augment_batch for the images at positions first .. first + n - 1 of a larger batch:
 * image b draws from the stream of (seed, step, first + b, view), so a slice comes out as it
 * would within the whole batch (a data-parallel process's share of a global batch). */
BYOL_API byol_status byol_augment_batch_at(struct byol_augment_pool *pool,
                                           const struct byol_augment_pipeline *p, const float *in,
                                           size_t n, size_t first, float *out, uint64_t seed,
                                           uint64_t step, int view);

/* Views cut from originals. The pipeline's region op is its first op that has a region (see
 * the ops' `region`: random_resized_crop), provided every op before it keeps the image's
 * shape and, when there are such ops, it makes images of that shape too; byol_augment_pipeline_region_shape gives its
 * output shape, or returns 0 when there is none. byol_augment_pipeline_region draws, from
 * `rng`, the region it crops from an image of in_h x in_w pixels as box = {top, left, height,
 * width}, before any other draw; byol_augment_pipeline_apply_after_region then runs every
 * other op, in order, on `in` (that region resampled to the op's output shape) with the same
 * stream. So the ops before the region op (byol_pytorch_default's colour jitter, grayscale,
 * flip and blur) act on the view at its output size, not on the original. */
BYOL_API int byol_augment_pipeline_region_shape(const struct byol_augment_pipeline *p, int *c,
                                                int *h, int *w);
BYOL_API byol_status byol_augment_pipeline_region(const struct byol_augment_pipeline *p, int in_h,
                                                  int in_w, struct byol_rng *rng, int box[4]);
BYOL_API byol_status byol_augment_pipeline_apply_after_region(const struct byol_augment_pipeline *p,
                                                              const float *in, float *out,
                                                              float *scratch,
                                                              struct byol_rng *rng);

struct byol_dataset;

/* Both views of a batch, read from `ds` and augmented on the pool: image b is dataset image
 * indices[b]; view v (0, 1) of it goes to out[v] + b * (the pipeline's output floats) and draws
 * from the stream (seed, step, first + b, v + 1), as byol_augment_batch_at would. The views
 * take the data's shape (a 1-channel dataset may feed pipelines of more channels: the plane is
 * repeated). When byol_augment_views_from_originals says so, each view's first op takes its
 * region from the original image instead (a folder dataset; the file read once for both
 * views, a JPEG decoded only as far and as large as the regions need) and the region is
 * resampled straight to that op's output (Pillow's antialiased bilinear, as torchvision's
 * RandomResizedCrop on a PIL image). Otherwise, or with resize_first, each image is read at
 * the dataset's shape (byol_dataset_get: for a folder, Resize + CenterCrop) and both pipelines
 * run on it, as byol-pytorch does. Errors name the image file or the op. */
BYOL_API byol_status byol_augment_views_batch(struct byol_augment_pool *pool,
                                              const struct byol_dataset *ds,
                                              const size_t *indices, size_t n, size_t first,
                                              struct byol_augment_pipeline *const views[2],
                                              int resize_first, uint64_t seed, uint64_t step,
                                              float *const out[2]);
/* 1 when byol_augment_views_batch takes the views' regions from the originals: the dataset
 * keeps them (data.format = "folder"), both views begin with an op that has a region
 * (random_resized_crop), the dataset has the pipelines' channels, and not resize_first. */
BYOL_API int byol_augment_views_from_originals(const struct byol_dataset *ds,
                                               struct byol_augment_pipeline *const views[2],
                                               int resize_first);

/* The most views per image byol_augment_views_batch_n takes: two global and up to 16 local. */
#define BYOL_AUGMENT_MAX_VIEWS 18

/* byol_augment_views_batch for nviews (2 .. BYOL_AUGMENT_MAX_VIEWS) views per image: view v of
 * image b goes to out[v] + b * (views[v]'s output floats) and draws from the stream (seed, step,
 * first + b, v + 1). Pipelines may repeat (every local view of a multi-crop run has the same
 * one) and may make images of different sizes; they all take the data's images. From the
 * originals, the file is read and decoded once for all the views (at the smallest DCT scale
 * that keeps every region at least its output size). */
BYOL_API byol_status byol_augment_views_batch_n(struct byol_augment_pool *pool,
                                                const struct byol_dataset *ds,
                                                const size_t *indices, size_t n, size_t first,
                                                int nviews,
                                                struct byol_augment_pipeline *const *views,
                                                int resize_first, uint64_t seed, uint64_t step,
                                                float *const *out);
/* byol_augment_views_from_originals for nviews views: every one must begin with a region. */
BYOL_API int byol_augment_views_from_originals_n(const struct byol_dataset *ds, int nviews,
                                                 struct byol_augment_pipeline *const *views,
                                                 int resize_first);

/* Multi-crop (SwAV, DINO): besides the two global views, `views` local views of each image,
 * smaller crops at side `size`, from the config's group
 *     multicrop = { views = 6; size = 12; augment_fn = ( ...ops... ); };
 * augment_fn is a list of ops or a preset name, built for images of `in` at image_size = size
 * (not set: the config's own augment_fn, view 1, built at that size); it must make
 * in->channels x size x size images. Local view k of image b draws from the stream of view
 * k + 3. No group, or views = 0: views 0 and no pipeline. Errors name the file and line. */
struct byol_multicrop {
    int views; /* 0 .. BYOL_AUGMENT_MAX_VIEWS - 2 */
    int size;  /* 1 .. in->image_size */
    struct byol_augment_pipeline *pipeline;
};
BYOL_API byol_status byol_augment_multicrop_create(struct byol_registry *reg,
                                                   const struct byol_settings *root,
                                                   const struct byol_augment_info *in,
                                                   struct byol_multicrop *out);
/* Frees the pipeline and zeroes *m; NULL is a no-op. */
BYOL_API void byol_augment_multicrop_free(struct byol_multicrop *m);

#ifdef __cplusplus
}
#endif
#endif
