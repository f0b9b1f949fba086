/* libFuzzer target: the settings accessors a plugin gets in the host table, called on every
 * setting of a parsed config with every child name, the way a plugin's create() reads its
 * group, including the error paths (wrong types, too many elements, unknown keys). */
#include "byol/registry.h"
#include "byol/settings.h"
#include "fuzz_util.h"

static void read_all(const struct byol_host_api *h, const struct byol_settings *s, int depth);

/* Every accessor on child `name` of group `s`. */
static void read_member(const struct byol_host_api *h, const struct byol_settings *s,
                        const char *name)
{
    int64_t i;
    double d, list[4];
    int b, n;
    const char *str;
    (void)h->setting_int(s, name, 7, &i);
    (void)h->setting_float(s, name, 0.5, &d);
    (void)h->setting_bool(s, name, 1, &b);
    if (h->setting_string(s, name, "x", &str) == BYOL_OK && str)
        (void)strlen(str);
    (void)h->setting_floats(s, name, list, 4, &n);
    const char *strs[4];
    (void)byol_settings_strings(s, name, strs, 4, &n);
    const struct byol_settings *c = h->setting_child(s, name);
    if (c)
        (void)h->setting_error(c, BYOL_ERR_INVALID, "fuzz: %s is %d", name, n);
    (void)byol_settings_has(s, name);
}

static void read_all(const struct byol_host_api *h, const struct byol_settings *s, int depth)
{
    static const char *const allowed[] = {"name", "p", "size", "threads", NULL};
    (void)h->setting_check_keys(s, allowed);
    (void)byol_settings_path(s);
    (void)byol_settings_is_list(s);
    read_member(h, s, "missing");
    int n = byol_settings_length(s);
    for (int i = 0; i < n && i < 64; i++) {
        const struct byol_settings *e = byol_settings_elem(s, i);
        const char *path = byol_settings_path(e);
        const char *dot = strrchr(path, '.');
        read_member(h, s, dot ? dot + 1 : path); /* the element's own name, in a group */
        if (depth < 8)
            read_all(h, e, depth + 1);
    }
    (void)byol_settings_elem(s, n);
    (void)byol_settings_elem(s, -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_config_text(data, size);
    if (!text)
        return 0;
    struct byol_config *cfg = NULL;
    if (byol_config_parse(text, "fuzz.cfg", &cfg) == BYOL_OK) {
        const struct byol_host_api *h = byol_host_api();
        read_all(h, byol_config_root(cfg), 0);
        read_all(h, NULL, 0); /* a missing group reads as empty */
        byol_config_free(cfg);
    }
    free(text);
    return 0;
}
