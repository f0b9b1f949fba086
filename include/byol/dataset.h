/* Datasets: a read-only handle over N images of shape (C,H,W), read as float32 in [0, 1]
 * (torchvision's ToTensor: u8 / 255), each with an optional integer label. One handle type
 * for every format (idx, cifar, folder, npy, mock), each opened by its byol_dataset_open_*
 * function or by byol_dataset_open_settings from a config's data group. */
#ifndef BYOL_DATASET_H
#define BYOL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_dataset;
struct byol_settings;

/* The most data bytes one IDX file may declare (N*H*W for images); larger headers are
 * rejected before anything is allocated. MNIST's training images are 47 MB. */
#define BYOL_IDX_MAX_BYTES (UINT64_C(4) << 30)

/* Open an IDX image file (magic 0x00000803: u8, dims N,H,W) and, unless `labels_path` is
 * NULL, its IDX label file (magic 0x00000801: u8, dim N). Either file may be gzip-compressed
 * (detected from its contents, not its name). Both are read into memory and closed. Errors,
 * each a one-line message naming the file: BYOL_ERR_NOT_FOUND (missing), BYOL_ERR_IO
 * (unreadable), BYOL_ERR_FORMAT (wrong magic, zero or oversized dimensions, a truncated file
 * or gzip stream, bytes after the declared data, corrupt gzip data, label count != image
 * count). The result has C = 1, H and W from the file. */
BYOL_API byol_status byol_dataset_open_idx(const char *images_path, const char *labels_path,
                                           struct byol_dataset **out);

/* CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin): records of one label byte
 * and 3072 image bytes (3 x 32 x 32, CHW). `paths` holds n_paths files or folders; a folder
 * stands for its data_batch_*.bin files in name order (the training split; name test_batch.bin
 * itself for the test split). Records are concatenated in the order given and read into
 * memory. Errors name the file: BYOL_ERR_NOT_FOUND / BYOL_ERR_IO (missing, unreadable, a
 * folder without data_batch_*.bin), BYOL_ERR_FORMAT (empty, or a size that is not a whole
 * number of records, or a label byte above 9). Labels are always present. */
BYOL_API byol_status byol_dataset_open_cifar(const char *const *paths, int n_paths,
                                             struct byol_dataset **out);

/* The largest image an image file may declare: each side at most BYOL_IMAGE_MAX_SIDE pixels
 * and at most BYOL_IMAGE_MAX_PIXELS pixels in all. Checked from the header, before any pixel
 * memory is allocated. */
#define BYOL_IMAGE_MAX_SIDE 16384
#define BYOL_IMAGE_MAX_PIXELS (UINT64_C(64) << 20)

/* An ImageFolder tree, as torchvision.datasets.ImageFolder reads it: every subfolder of `root`
 * is a class (sorted by name; label = its index), and every .png / .jpg / .jpeg file under it
 * (any depth, case-insensitive extension, folders then files sorted by name) is one image.
 * Other files and names starting with '.' are skipped; a root without class folders, or a
 * class folder without images, is refused (BYOL_ERR_NOT_FOUND). Opening only lists the tree:
 * images are decoded by each byol_dataset_get (thread-safe: no state is shared), so a corrupt
 * or oversized file fails there, with BYOL_ERR_FORMAT and a message naming it. The content
 * (PNG or JPEG signature) decides the decoder, not the extension.
 *
 * Each image becomes what torchvision's default loader + Resize(image_size) +
 * CenterCrop(image_size) + ToTensor give: converted to RGB (channels = 3: gray replicated,
 * palette expanded, alpha dropped, 16-bit reduced to its high byte) or to gray (channels = 1:
 * PIL's convert("L"), L = (19595 R + 38470 G + 7471 B + 2^15) >> 16, i.e. 0.299/0.587/0.114),
 * its shorter side resized to image_size with PIL's bilinear filter (antialiased when
 * shrinking, 8-bit fixed point, as Image.resize), then the center image_size square cropped.
 * Shape: (channels, image_size, image_size). channels must be 1 or 3, image_size 1..4096. */
BYOL_API byol_status byol_dataset_open_folder(const char *root, int channels, int image_size,
                                              struct byol_dataset **out);

/* Image files (PNG, JPEG) decoded so far in this process and the pixels decoded, where a JPEG
 * decoded in part at a reduced scale counts only those: what views cost in decoding, for
 * benchmarks and tests. */
BYOL_API void byol_image_decode_stats(uint64_t *images, uint64_t *pixels);

/* The most bytes an .npy file may hold. */
#define BYOL_NPY_MAX_BYTES (UINT64_C(16) << 30)

/* NumPy .npy files (format 1.0 or 2.0, C order): images of shape (N, C, H, W) (or (N, H, W),
 * read as C = 1) with dtype float32 ('<f4', used as they are: they should lie in [0, 1]) or
 * uint8 ('|u1', divided by 255), and, unless labels_path is NULL, labels of shape (N,) with
 * dtype int64, int32 or uint8 (values 0 .. INT_MAX). Both are read into memory. Errors name
 * the file: BYOL_ERR_NOT_FOUND / BYOL_ERR_IO, BYOL_ERR_FORMAT (wrong magic, an unsupported
 * version, dtype, order or rank, a malformed header, a truncated file or bytes after the
 * data, a non-finite float, a negative label, label count != image count). */
BYOL_API byol_status byol_dataset_open_npy(const char *images_path, const char *labels_path,
                                           struct byol_dataset **out);

/* byol-pytorch's MockDataset: `length` random images of (channels, image_size, image_size)
 * without labels. Unlike MockDataset (torch.randn, new values at every access) the pixels
 * are uniform in [0, 1), since every pipeline here expects ToTensor's range, and image i is a
 * pure function of (seed, i), so runs are repeatable. */
BYOL_API byol_status byol_dataset_open_mock(size_t length, int channels, int image_size,
                                            uint64_t seed, struct byol_dataset **out);

/* Open the dataset a config's data group describes (`data_group` may be NULL: the defaults).
 * data.format picks the reader ("idx" when unset); the keys each format takes:
 *   idx:    images (file), labels (file, optional)
 *   cifar:  images (a file or folder, or a list of them)
 *   folder: images (the root folder)
 *   npy:    images (file), labels (file, optional)
 *   mock:   length (default 10000; images are channels x image_size x image_size)
 * plus the loader's keys (shuffle), which it reads itself. Relative paths are relative to
 * config_dir (NULL or "": the working directory). `channels` and `image_size` shape the
 * folder and mock formats only; the others have their files' shape. `seed` feeds mock.
 * Errors: an unknown key, a wrong type, an unknown format or a missing 'images' as
 * "FILE:LINE: data.KEY: ..." (BYOL_ERR_INVALID / BYOL_ERR_UNSUPPORTED); otherwise the
 * reader's error. */
BYOL_API byol_status byol_dataset_open_settings(const struct byol_settings *data_group,
                                                const char *config_dir, int channels,
                                                int image_size, uint64_t seed,
                                                struct byol_dataset **out);

/* As byol_dataset_open_settings, for a group that names its image and label settings
 * otherwise (the eval group: train_images / train_labels, test_images / test_labels):
 * `images_key` stands for 'images' in every format, `labels_key` for 'labels' in idx and npy
 * (NULL: no labels are read). The group's keys are not checked, since such a group holds other
 * settings too: the caller checks them. Same errors, naming the keys given. */
BYOL_API byol_status byol_dataset_open_settings_keys(const struct byol_settings *group,
                                                     const char *config_dir,
                                                     const char *images_key,
                                                     const char *labels_key, int channels,
                                                     int image_size, uint64_t seed,
                                                     struct byol_dataset **out);

/* The format that opened the handle ("idx", "cifar", "folder", "npy", "mock"; "" for NULL). */
BYOL_API const char *byol_dataset_format(const struct byol_dataset *ds);

/* NULL is a no-op. */
BYOL_API void byol_dataset_free(struct byol_dataset *ds);

/* The number of images (0 for NULL). */
BYOL_API size_t byol_dataset_count(const struct byol_dataset *ds);
/* The shape of one image; any pointer may be NULL. */
BYOL_API void byol_dataset_shape(const struct byol_dataset *ds, int *c, int *h, int *w);
/* Image `index` as C*H*W floats in [0, 1] (plain CHW) into out_chw. Safe to call from several
 * threads at once. BYOL_ERR_INVALID when index >= count. */
BYOL_API byol_status byol_dataset_get(const struct byol_dataset *ds, size_t index, float *out_chw);
/* The label of image `index`, or -1 when the dataset has no labels or index >= count. */
BYOL_API int byol_dataset_label(const struct byol_dataset *ds, size_t index);

#ifdef __cplusplus
}
#endif
#endif
