/* Exporting a trained encoder: the online encoder of a learner checkpoint as a torchvision
 * state_dict, the network a PyTorch user loads with resnet18().load_state_dict(...). */
#ifndef BYOL_EXPORT_H
#define BYOL_EXPORT_H

#include <stddef.h>

#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read the learner checkpoint `checkpoint` (byol/learner.h names) and write its
 * online_encoder.net.* tensors to `out` with that prefix stripped ("conv1.weight",
 * "layer1.0.bn1.running_mean", "layer1.0.bn1.num_batches_tracked", ...): parameters and
 * batch-norm running statistics as F32 (F64, F16 and BF16 converted), num_batches_tracked as I64
 * scalars. Everything else in the checkpoint (projector, predictor, target, optimizer and run
 * state) is left out. `drop`: a layer name ("fc") whose tensors ("fc.*") are left out too, or
 * NULL to keep every encoder layer; the ResNet encoders' fc is never trained by BYOL (it comes
 * after the hidden layer) and keeps its initial weights. Metadata: format "pt" and source (the
 * checkpoint's path). Written atomically (temp file, fsync, rename).
 *
 * Errors, one line naming the file: it cannot be read or is no safetensors file; it is not a
 * learner checkpoint (no online_encoder.* tensors); it has no online_encoder.net.* tensors; a
 * tensor has a dtype the export cannot convert. */
BYOL_API byol_status byol_export_encoder(const char *checkpoint, const char *out, const char *drop);

/* ---- ONNX ------------------------------------------------------------------------------ */

struct byol_backend;
struct byol_registry;

/* Write the online encoder of the learner checkpoint `checkpoint` as an ONNX model (IR version
 * 8, opset 17) to `out`: input "images" (N, C, H, W) float32 with a dynamic N, C and H = W from
 * the checkpoint's config (model.encoder.in_channels, model.image_size); output "embedding"
 * (N, D), the hidden layer's output flattened (what byolctl embed computes); with
 * `with_projection` a second output "projection" (N, projection_size). The network is rebuilt
 * from the resolved config in the checkpoint's metadata ("config"), with the encoder plugins
 * `reg` finds, on `be`, and the checkpoint's weights loaded. Inference form: a batch norm that
 * follows a convolution or linear layer (its only reader) is folded into that layer's weights
 * and bias, any other is a BatchNormalization node with the running statistics. Weights are
 * initializers (raw little-endian float32). Written atomically (temp file, fsync, rename).
 *
 * Errors, one line naming the file: it cannot be read or is no safetensors file; it has no
 * config metadata; the config does not rebuild the learner (e.g. its encoder plugin is not
 * found); the weights do not load; a layer's op has no ONNX mapping (naming layer and op); the
 * weights exceed 2 GB (ONNX's external data is not written). */
BYOL_API byol_status byol_export_onnx(struct byol_backend *be, struct byol_registry *reg,
                                     const char *checkpoint, const char *out, int with_projection);

/* ---- The files a command reads and writes (byolctl export, embed, run) -------------------- */

/* One file a command reads (output 0) or writes (output 1), with how the user named it: `what`
 * is the argument, option or setting ("OUT", "--labels", "metrics.file", "the config"). */
struct byol_file_use {
    const char *what;
    const char *path; /* NULL: left out */
    int output;
};

/* Before a command does any work: no output may be the same file as an input or as another
 * output. Files are compared by device and inode (stat), not by name, so a hard link or a
 * symbolic link to an input is that input; a path that does not exist yet is its deepest
 * existing folder and the rest of its name. The message names both, the later entry first:
 * "--labels x.npy is the same file as --out x.npy". With `probe`, each output must then not be
 * a folder, a device, a FIFO or a socket (it is replaced, never written into: "--out:
 * /dev/null: cannot write there: not a regular file"), and its folder (not created) must take
 * a new file: a probe file is created and removed there ("--out: DIR: cannot write there: No
 * such file or directory"). */
BYOL_API byol_status byol_files_check(const struct byol_file_use *files, size_t n, int probe);

#ifdef __cplusplus
}
#endif
#endif
