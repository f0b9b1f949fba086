/* byol-c: the umbrella header for embedders (plugins include byol/plugin.h and the header of
 * their kind only). */
#ifndef BYOL_BYOL_H
#define BYOL_BYOL_H

#include "byol/backend.h"
#include "byol/net.h"
#include "byol/plugin.h"
#include "byol/registry.h"
#include "byol/rng.h"
#include "byol/safetensors.h"
#include "byol/settings.h"
#include "byol/status.h"
#include "byol/tensor.h"

#define BYOL_VERSION_STRING "0.1.0"

#endif
