/* libFuzzer target: the config loader (byol_config_parse on libconfig) and --set overrides.
 * The input is config text, optionally followed by a NUL and one "key.path=value" override. */
#include "byol/settings.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_config_text(data, size);
    if (!text)
        return 0;
    size_t len = strlen(text);
    const char *set = len < size ? text + len + 1 : NULL;
    struct byol_config *cfg = NULL;
    if (byol_config_parse(text, "fuzz.cfg", &cfg) == BYOL_OK) {
        if (set)
            (void)byol_config_set(cfg, set);
        (void)byol_config_set(cfg, "train.steps=20");
        static const char *const top[] = {"seed", "model", "data", "train", NULL};
        (void)byol_settings_check_keys(byol_config_root(cfg), top);
        int64_t v;
        (void)byol_settings_int(byol_settings_child(byol_config_root(cfg), "train"), "steps", 0,
                                &v);
        byol_config_free(cfg);
    }
    free(text);
    return 0;
}
