/* The config-defined encoder "layers" (core/nn/encoder_layers.c), which the host registers itself
 * (path "(host)") so that a network can be written as a list of layers in model.encoder. */
#ifndef BYOL_CORE_ENCODER_LAYERS_H
#define BYOL_CORE_ENCODER_LAYERS_H

#include "byol/encoder.h"

const struct byol_encoder_ops *byol_encoder_layers_ops(void);

#endif
