/* Exporting a trained encoder: the online encoder of a learner checkpoint as a torchvision
 * state_dict, the network a PyTorch user loads with resnet18().load_state_dict(...). */
#ifndef BYOL_EXPORT_H
#define BYOL_EXPORT_H

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

#ifdef __cplusplus
}
#endif
#endif
