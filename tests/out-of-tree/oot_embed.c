/* An embedder built out of tree: loads the plugin given on the command line through the
 * installed libbyol and prints what it registered. */
#include <byol/byol.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: oot_embed PLUGIN.so\n");
        return 2;
    }
    struct byol_registry *reg = NULL;
    const void *ops = NULL;
    int rc = 1;
    if (byol_registry_create(&reg) == BYOL_OK &&
        byol_registry_require(reg, BYOL_PLUGIN_BACKEND, argv[1], &ops) == BYOL_OK) {
        const struct byol_backend_ops *be = ops;
        printf("%s %s\n", be->name, be->version);
        rc = 0;
    } else {
        fprintf(stderr, "oot_embed: %s\n", byol_last_error());
    }
    byol_registry_free(reg);
    return rc;
}
