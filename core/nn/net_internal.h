/* Network engine calls that only the core makes (core/nn/net.c). Not installed. */
#ifndef BYOL_CORE_NET_INTERNAL_H
#define BYOL_CORE_NET_INTERNAL_H

#include "byol/net.h"

/* Before byol_net_build: every batch norm for which want(layer name, user) is nonzero (want
 * NULL: every one) takes its training statistics over all processes of a data-parallel run
 * through `sync` (SyncBatchNorm, struct byol_op_desc.bn_sync), which must outlive the network.
 * The build fails on a backend without BYOL_BACKEND_SYNC_BN. */
byol_status byol_net_set_bn_sync(struct byol_net *net, const struct byol_allreduce *sync,
                                 int (*want)(const char *layer, void *user), void *user);

#endif
