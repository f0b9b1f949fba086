/* The raw-pixel baseline's cache (core/eval/eval_internal.h): its two accuracies depend only on the
 * transformed pixels, the labels and the classifiers' settings, never on the encoder, so they
 * are kept in a small text file named by a digest of exactly those inputs and reused by every
 * later evaluation of the same data. A file is trusted only when its own checksum, format and
 * key all check out; anything else is reported and recomputed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval_internal.h"
#include "fileio_internal.h"
#include "log_internal.h"

/* Part of every key and the first line of every file: bump it when the classifiers' definition
 * changes, so that older results are no longer found. */
#define CACHE_MAGIC "byol-c raw-pixel baseline 1"
#define CACHE_MAX_BYTES 4096

/* ---- the digest ------------------------------------------------------------------------ */

/* Two independent 64-bit lanes over 8-byte words, each a multiply-xorshift chain with its own
 * odd multiplier (drawn at random for this file), then a final scramble of each: fast enough
 * for hundreds of MB of pixels (a few GB/s) and, at 128 bits, with no accidental collision to
 * fear. It guards against mix-ups, not against tampering. */
struct hash {
    uint64_t a, b, bytes;
};

#define HASH_MUL_A 0x44b2c5b4728c9f2dull
#define HASH_MUL_B 0xeb6e22ca25310e53ull
#define HASH_FIN_1 0x9da608dd030764d5ull
#define HASH_FIN_2 0xc5eb646ba2f74917ull

static uint64_t hash_scramble(uint64_t h)
{
    h = (h ^ (h >> 31)) * HASH_FIN_1;
    h = (h ^ (h >> 27)) * HASH_FIN_2;
    return h ^ (h >> 30);
}

static void hash_init(struct hash *h)
{
    *h = (struct hash){HASH_MUL_B, HASH_MUL_A, 0};
}

static void hash_word(struct hash *h, uint64_t w)
{
    h->a = (h->a ^ w) * HASH_MUL_A;
    h->a ^= h->a >> 29;
    h->b = (h->b + w) * HASH_MUL_B;
    h->b ^= h->b >> 32;
}

static void hash_bytes(struct hash *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        hash_word(h, w);
    }
    if (i < n) { /* the tail, zero-padded: the length (below) tells it from real zeros */
        uint64_t w = 0;
        memcpy(&w, p + i, n - i);
        hash_word(h, w);
    }
    /* The size of each piece, so that moving a boundary between pieces changes the digest. */
    hash_word(h, (uint64_t)n);
    h->bytes += n;
}

static void hash_u64(struct hash *h, uint64_t v)
{
    hash_bytes(h, &v, sizeof v);
}

static void hash_double(struct hash *h, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    hash_u64(h, bits);
}

static void hash_hex(const struct hash *h, char out[EVAL_HASH_HEX])
{
    snprintf(out, EVAL_HASH_HEX, "%016" PRIx64 "%016" PRIx64, hash_scramble(h->a ^ h->bytes),
             hash_scramble(h->b + h->bytes));
}

void eval_baseline_key(const struct eval_baseline_inputs *in, char out[EVAL_HASH_HEX])
{
    struct hash h;
    hash_init(&h);
    hash_bytes(&h, CACHE_MAGIC, sizeof CACHE_MAGIC);
    hash_u64(&h, (uint64_t)in->dim);
    hash_u64(&h, (uint64_t)in->n_classes);
    hash_u64(&h, (uint64_t)in->knn_k);
    hash_double(&h, in->knn_temperature);
    hash_double(&h, in->probe.l2);
    hash_u64(&h, (uint64_t)in->probe.max_iterations);
    hash_double(&h, in->probe.tolerance);
    for (int s = 0; s < 2; s++) {
        hash_bytes(&h, in->pixels[s], in->n[s] * (size_t)in->dim * sizeof(float));
        hash_bytes(&h, in->labels[s], in->n[s] * sizeof(int));
    }
    hash_hex(&h, out);
}

/* ---- where the files live -------------------------------------------------------------- */

byol_status eval_cache_dir(char *out, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    /* XDG: a relative XDG_CACHE_HOME is invalid and ignored. */
    if (xdg && xdg[0] == '/')
        len = snprintf(out, n, "%s/byol-c", xdg);
    else if (home && home[0] == '/')
        len = snprintf(out, n, "%s/.cache/byol-c", home);
    else
        return byol_error(BYOL_ERR_INVALID, "neither XDG_CACHE_HOME nor HOME names a folder");
    if (len < 0 || (size_t)len >= n)
        return byol_error(BYOL_ERR_INVALID, "the cache folder's path is too long");
    return byol_make_dirs(out, 0700); /* 0700: as XDG asks of a cache folder it creates */
}

/* ---- the file -------------------------------------------------------------------------- */

/* The lines before "check": magic, key, the two accuracies (exact: %a) and the dim. */
static int cache_body(char *out, size_t n, const char *key, const struct eval_baseline *b)
{
    return snprintf(out, n, CACHE_MAGIC "\nkey %s\ndim %d\nknn_top1 %a\nlinear_top1 %a\n", key,
                    b->dim, b->knn_top1, b->linear_top1);
}

static void cache_checksum(const char *body, size_t n, char out[EVAL_HASH_HEX])
{
    struct hash h;
    hash_init(&h);
    hash_bytes(&h, body, n);
    hash_hex(&h, out);
}

struct cache_text {
    const char *text;
    size_t n;
};

static int cache_write_text(int fd, void *user)
{
    const struct cache_text *t = user;
    return byol_write_all(fd, t->text, t->n);
}

byol_status eval_cache_write(const char *path, const char *key, const struct eval_baseline *b)
{
    char text[CACHE_MAX_BYTES], sum[EVAL_HASH_HEX];
    int body = cache_body(text, sizeof text, key, b);
    if (body < 0 || (size_t)body + 8 + EVAL_HASH_HEX >= sizeof text)
        return byol_error(BYOL_ERR_INTERNAL, "%s: cache entry too long", path);
    cache_checksum(text, (size_t)body, sum);
    int n = body + snprintf(text + body, sizeof text - (size_t)body, "check %s\n", sum);
    struct cache_text t = {text, (size_t)n};
    return byol_file_replace(path, cache_write_text, &t);
}

/* The whole file (at most CACHE_MAX_BYTES), NUL-terminated. 1 read, 0 absent, -1 otherwise
 * (why in `why`). */
static int cache_slurp(const char *path, char *buf, size_t size, char *why, size_t why_n)
{
    struct stat sb;
    int fd = byol_open_regular(path, &sb); /* a FIFO there would block the evaluation */
    if (fd == -1 && errno == ENOENT)
        return 0;
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        snprintf(why, why_n, "cannot open it: %s",
                 fd == -2 ? "not a regular file" : strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t n = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (err || n == size) {
        snprintf(why, why_n, "%s", err ? "cannot read it" : "too large for a cache entry");
        return -1;
    }
    buf[n] = '\0';
    return 1;
}

/* The entry's fields, checked: layout, checksum, key, values. NULL or what is wrong; *b is
 * written only for a good entry. */
static const char *cache_parse(const char *text, const char *key, struct eval_baseline *out)
{
    struct eval_baseline e, *b = &e;
    const char *check = strstr(text, "check ");
    char sum[EVAL_HASH_HEX], got[EVAL_HASH_HEX], stored[EVAL_HASH_HEX];
    if (!check || (check != text && check[-1] != '\n'))
        return "no checksum line";
    if (sscanf(check, "check %32s", stored) != 1 || strlen(check) != 6 + 32 + 1 ||
        check[6 + 32] != '\n')
        return "a malformed checksum line";
    cache_checksum(text, (size_t)(check - text), sum);
    if (strcmp(sum, stored) != 0)
        return "its checksum does not match its contents (damaged)";
    int used = 0;
    if (sscanf(text, CACHE_MAGIC "\nkey %32s\ndim %d\nknn_top1 %la\nlinear_top1 %la\n%n", got,
               &b->dim, &b->knn_top1, &b->linear_top1, &used) != 4 ||
        text + used != check)
        return "not a " CACHE_MAGIC " entry";
    if (strcmp(got, key) != 0)
        return "it holds another key";
    if (!(b->knn_top1 >= 0 && b->knn_top1 <= 1 && b->linear_top1 >= 0 && b->linear_top1 <= 1))
        return "an accuracy outside [0, 1]";
    *out = e;
    return NULL;
}

int eval_cache_read(const char *path, const char *key, int dim, struct eval_baseline *b)
{
    char text[CACHE_MAX_BYTES + 1], why[256];
    int rc = cache_slurp(path, text, sizeof text, why, sizeof why);
    if (rc <= 0) {
        if (rc < 0)
            byol_log(BYOL_LOG_WARN, "%s: ignoring the baseline cache entry: %s", path, why);
        return rc;
    }
    struct eval_baseline e;
    const char *bad = cache_parse(text, key, &e);
    if (!bad && e.dim != dim)
        bad = "it was made for images of another size";
    if (bad) {
        byol_log(BYOL_LOG_WARN, "%s: ignoring the baseline cache entry: %s; recomputing it", path,
                 bad);
        return -1;
    }
    *b = e;
    return 1;
}
