/* A built network as ONNX nodes (core/nn/net_onnx.c). Not installed. */
#ifndef BYOL_CORE_NET_ONNX_INTERNAL_H
#define BYOL_CORE_NET_ONNX_INTERNAL_H

#include "byol/net.h"
#include "onnx_internal.h"

/* A layer (name or alias) whose output becomes a graph output `name`, flattened to (N, D). */
struct byol_net_onnx_output {
    const char *layer;
    const char *name;
};

/* Add to `m` the graph input `input_name` for the network's input layer `input` (N, C, H, W
 * with a dynamic N), the nodes and initializers computing every output in inference form, and
 * the outputs. A batch norm whose input is a convolution or linear layer read by nothing else
 * is folded into that layer's weights and bias; any other becomes BatchNormalization with the
 * running statistics. Fails naming the layer and op for an op without an ONNX mapping, and for
 * an input layer other than `input` that an output needs. */
byol_status byol_net_onnx_graph(struct byol_net *net, const char *input, const char *input_name,
                                const struct byol_net_onnx_output *outs, int n_outs,
                                struct byol_onnx *m);

#endif
