/* The network engine: a DAG of named layers on one backend. Parameters, their gradients and
 * the batch-norm buffers each live in one flat float32 allocation with per-layer views, so an
 * optimizer or EMA step is one loop and copying a network is one memcpy.
 *
 * Life cycle: byol_net_create, add layers (each names its inputs; NULL = the layer added just
 * before), byol_net_build (shapes, parameters, plans, activations), then any number of
 * set_input / forward / backward calls, then byol_net_free. Layer and parameter names follow
 * torchvision ("layer1.0.conv1", "layer1.0.conv1.weight"). */
#ifndef BYOL_NET_H
#define BYOL_NET_H

#include <stddef.h>
#include <stdint.h>

#include "byol/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_net;

/* The backend is borrowed and must outlive the network. */
BYOL_API byol_status byol_net_create(struct byol_backend *be, struct byol_net **out);
BYOL_API void byol_net_free(struct byol_net *net);

/* ---- Building. Names are unique; `input` NULL means the previous layer. ---------------- */
BYOL_API byol_status byol_net_add_input(struct byol_net *net, const char *name,
                                        struct byol_shape shape);
/* Before byol_net_build: let each batch norm that only a relu reads compute that relu too (when
 * the backend has BYOL_BACKEND_FUSES_BN_RELU; otherwise nothing changes). Both names still
 * resolve, and the batch norm's output then reads as the relu's. Default off. */
BYOL_API byol_status byol_net_set_fusion(struct byol_net *net, int on);

/* Memory plans: which storage layers may share (set before byol_net_build). */
enum byol_net_memory {
    BYOL_NET_KEEP_ALL = 0,     /* every output and gradient stays readable (the default) */
    /* Never runs backward (fails if asked): a layer reuses the output storage of layers whose
     * readers are all done, so after a forward only the outputs of inputs and of layers that no
     * layer reads (the results) are valid. The BYOL target network. */
    BYOL_NET_FORWARD_ONLY = 1,
    /* Gradients share storage once their layer's backward has read them, so after a backward
     * only the inputs' gradients are valid; outputs are all kept. A training network. */
    BYOL_NET_SHARE_GRADS = 2,
};
BYOL_API byol_status byol_net_set_memory(struct byol_net *net, enum byol_net_memory mode);

/* Whether backward computes the gradient with respect to an input layer (default: no, as for a
 * tensor without requires_grad in PyTorch: the first layer then skips its input gradient, which
 * for a stem convolution is the slowest op of a step). Any time; fails for a non-input. */
BYOL_API byol_status byol_net_set_requires_grad(struct byol_net *net, const char *input, int on);
/* Any op: desc->kind and desc->u are used, shapes are inferred. inputs[1] only for ADD. */
BYOL_API byol_status byol_net_add_layer(struct byol_net *net, const char *name,
                                        const struct byol_op_desc *desc,
                                        const char *const inputs[2]);
BYOL_API byol_status byol_net_add_conv2d(struct byol_net *net, const char *name,
                                         const char *input, int out_channels, int kernel,
                                         int stride, int pad, int bias);
/* eps 1e-5, momentum 0.1 (PyTorch's defaults). Works on (N,C,H,W) and (N,F,1,1). */
BYOL_API byol_status byol_net_add_batchnorm(struct byol_net *net, const char *name,
                                            const char *input, int affine);
BYOL_API byol_status byol_net_add_relu(struct byol_net *net, const char *name, const char *input);
BYOL_API byol_status byol_net_add_maxpool(struct byol_net *net, const char *name,
                                          const char *input, int kernel, int stride, int pad);
BYOL_API byol_status byol_net_add_avgpool(struct byol_net *net, const char *name,
                                          const char *input);
BYOL_API byol_status byol_net_add_linear(struct byol_net *net, const char *name,
                                         const char *input, int out_features, int bias);
BYOL_API byol_status byol_net_add_add(struct byol_net *net, const char *name, const char *a,
                                      const char *b);
BYOL_API byol_status byol_net_add_flatten(struct byol_net *net, const char *name,
                                          const char *input);

/* A second name for an existing layer's output, e.g. "layer1" (a Sequential) for
 * "layer1.1" (its last block), or "layer1.1" (a block) for the block's final relu. Aliases
 * resolve everywhere a layer name is accepted. */
BYOL_API byol_status byol_net_add_alias(struct byol_net *net, const char *alias,
                                        const char *layer);
/* Declare the next top-level child (a layer or alias), in the order net.children() lists
 * them in PyTorch, so an integer hidden layer can index them. */
BYOL_API byol_status byol_net_add_child(struct byol_net *net, const char *name);
BYOL_API size_t byol_net_child_count(const struct byol_net *net);
BYOL_API const char *byol_net_child_name(const struct byol_net *net, size_t i);
/* Resolve a Python-style index (-1 = last) into the children list; fails with the list of
 * children when out of range. */
BYOL_API byol_status byol_net_child_at(const struct byol_net *net, int index, const char **name);

/* Infer shapes, allocate parameters / buffers / activations, create plans. Parameters start
 * as PyTorch's defaults for each layer type (see byol_net_init_default). */
BYOL_API byol_status byol_net_build(struct byol_net *net, uint64_t seed);
/* Build `net` in place of byol_net_build over the parameters, gradients, batch-norm buffers
 * and num_batches_tracked counters of `owner` (built): the same memory, not a copy, so what a
 * forward of either moves (running statistics, counters) the other sees, and a backward of
 * either adds into the one set of gradients. For the same network run at another input size
 * (multi-crop's small views): `net` must have the owner's layers in the owner's order (names,
 * inputs, ops; the input shapes may differ) and every parameter the owner's shape, else
 * BYOL_ERR_INVALID naming the layer, or BYOL_ERR_SHAPE naming the parameter and both shapes.
 * Its own are the plans, activations and gradient tensors, and its memory, fusion and
 * batch-norm settings (set before this call, as for byol_net_build). Initialises nothing.
 * `owner` must outlive `net`; byol_net_free(net) leaves the owner's arrays alone, and the
 * parameter accessors of `net` return views into them. */
BYOL_API byol_status byol_net_build_shared(struct byol_net *net, struct byol_net *owner);

/* ---- Parameters. --------------------------------------------------------------------- */
enum byol_tensor_role {
    BYOL_ROLE_PARAM = 0,  /* trained: has a gradient */
    BYOL_ROLE_BUFFER = 1, /* running_mean / running_var: state, no gradient */
};

struct byol_param {
    const char *name;    /* "layer1.0.bn1.weight" */
    enum byol_tensor_role role;
    int ndim;
    int dims[4];         /* PyTorch's shape */
    size_t numel;
    float *data;         /* view into the flat params (or buffers) */
    float *grad;         /* view into the flat grads; NULL for buffers */
};

BYOL_API size_t byol_net_param_count(const struct byol_net *net); /* params and buffers */
BYOL_API const struct byol_param *byol_net_param_at(const struct byol_net *net, size_t i);
BYOL_API const struct byol_param *byol_net_find_param(const struct byol_net *net,
                                                      const char *name);
/* The flat arrays: params and grads have byol_net_num_params floats, buffers
 * byol_net_num_buffers. */
BYOL_API float *byol_net_params(struct byol_net *net);
BYOL_API float *byol_net_grads(struct byol_net *net);
BYOL_API float *byol_net_buffers(struct byol_net *net);
BYOL_API size_t byol_net_num_params(const struct byol_net *net);
BYOL_API size_t byol_net_num_buffers(const struct byol_net *net);
/* Batch norm's num_batches_tracked, per batch-norm layer, by layer name; NULL if not BN. */
BYOL_API int64_t *byol_net_bn_batches_tracked(struct byol_net *net, const char *layer);

/* PyTorch's default initialisation: conv and linear weight and bias U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)), batch norm weight 1, bias 0, running
 * mean 0, running var 1. Deterministic in `seed`. */
BYOL_API void byol_net_init_default(struct byol_net *net, uint64_t seed);

/* Load weights from a safetensors file: for every parameter and buffer, the F32 tensor named
 * prefix + name (prefix "" for a torchvision state_dict, "online_encoder.net." in a byol-pytorch
 * one), and each batch norm's I64 num_batches_tracked when the file has it. Nothing is written
 * unless every tensor checks out. Fails naming the tensor on a shape mismatch ("fc.weight: file
 * has [10, 512], network has [1000, 512]") or another dtype; with `strict`, also when tensors
 * are missing (the first few are listed). Tensors the network lacks are ignored. */
struct byol_st_file;
BYOL_API byol_status byol_net_load_weights(struct byol_net *net, const struct byol_st_file *f,
                                           const char *prefix, int strict);

/* ---- Running. ------------------------------------------------------------------------ */
BYOL_API byol_status byol_net_set_input(struct byol_net *net, const char *name,
                                        const float *nchw);
/* Compute `until` and the layers it depends on (NULL: every layer). Training mode uses batch
 * statistics and updates running statistics; inference mode uses running statistics. */
BYOL_API byol_status byol_net_forward(struct byol_net *net, int training, const char *until);
/* Seed the gradient of layer `from`'s output with `dy` (plain NCHW), and propagate it back
 * through every layer that `from` depends on. Parameter gradients add up (as .grad does). */
BYOL_API byol_status byol_net_backward(struct byol_net *net, const char *from, const float *dy);
BYOL_API void byol_net_zero_grad(struct byol_net *net);

/* Layers, by name. Outputs are read as plain NCHW floats. */
BYOL_API int byol_net_has_layer(const struct byol_net *net, const char *name);
/* 1 if computing layer `until` needs layer `layer` (a layer depends on itself), else 0, also
 * when either name is unknown. Names may be aliases. Tells which parameters a loss reaches. */
BYOL_API int byol_net_depends_on(struct byol_net *net, const char *until, const char *layer);
BYOL_API byol_status byol_net_output_shape(const struct byol_net *net, const char *name,
                                           struct byol_shape *shape);
BYOL_API byol_status byol_net_read_output(struct byol_net *net, const char *name, float *dst);
/* The gradient that the last backward left at a layer's output (for an input layer: the
 * gradient with respect to the input, if it requires one). Fails before the first backward,
 * and for an input without byol_net_set_requires_grad. Gradient tensors are allocated by the
 * first backward, so a network that only runs forward never holds them. */
BYOL_API byol_status byol_net_read_grad(struct byol_net *net, const char *name, float *dst);
/* Multiply-adds of one forward pass computing `until` (NULL: every layer) and the layers it
 * depends on, batch included: convolutions (N*O*OH*OW*C*KH*KW) and linear layers (N*O*F); the
 * other ops do a handful of operations per element and are not counted. A backward costs twice
 * a forward's count by the usual convention (data and weight gradients). */
BYOL_API byol_status byol_net_forward_macs(struct byol_net *net, const char *until,
                                           double *macs);
/* Per-layer wall-clock timing for profiles (off by default). Switching it on resets the totals;
 * while on, every forward and backward of a layer adds its time; off keeps them for reading. */
BYOL_API void byol_net_set_profiling(struct byol_net *net, int on);
/* Seconds spent in layer i's forward and backward since profiling was switched on, and its op
 * kind (0 for an input layer). Fails for an index out of range. */
BYOL_API byol_status byol_net_layer_time(const struct byol_net *net, size_t i, int *kind,
                                         double *forward_s, double *backward_s);
BYOL_API size_t byol_net_layer_count(const struct byol_net *net);
/* What layer i's backend plan runs ("fwd=jit:avx2 bwd_d=... "; see byol_backend_plan_describe),
 * into buf; empty for an input layer, an index out of range, or a network not yet built. */
BYOL_API void byol_net_layer_describe(const struct byol_net *net, size_t i, char *buf,
                                      size_t size);
BYOL_API const char *byol_net_layer_name(const struct byol_net *net, size_t i);
/* Read-only views of the graph, for exporters. The index of the layer a name or alias stands
 * for, or -1. */
BYOL_API long byol_net_layer_index(const struct byol_net *net, const char *name);
/* Layer i's op (kind, attributes; after byol_net_build also its inferred in/out shapes), or NULL
 * for an input layer or an index out of range. */
BYOL_API const struct byol_op_desc *byol_net_layer_desc(const struct byol_net *net, size_t i);
/* The indices of the layers layer i reads into in[0..1]; returns how many (0 for an input
 * layer), or -1 for an index out of range. */
BYOL_API int byol_net_layer_inputs(const struct byol_net *net, size_t i, size_t in[2]);

#ifdef __cplusplus
}
#endif
#endif
