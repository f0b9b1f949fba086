/* The slots of struct byol_host_api in ABI 1.0 before verror, in order: X(slot) each. Shared by
 * oldhost.c (built against the frozen header beside this file) and test_loader.c (built against
 * today's), which compare the offsets each sees. */
#ifndef BYOL_TEST_HOST_SLOTS_1_0_H
#define BYOL_TEST_HOST_SLOTS_1_0_H

#define BYOL_TEST_HOST_SLOTS_1_0(X)                                                                \
    X(abi_version)                                                                                 \
    X(struct_size) X(alloc) X(free) X(log) X(error) X(rng_init) X(rng_u32) X(rng_uniform)          \
        X(rng_normal) X(setting_int) X(setting_float) X(setting_bool) X(setting_string)            \
            X(setting_floats) X(setting_check_keys) X(register_ops) X(net_add_layer)               \
                X(net_add_alias) X(net_add_child) X(net_param_count) X(net_param_at)               \
                    X(net_find_param) X(setting_child) X(setting_error)

#endif
