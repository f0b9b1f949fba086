/* TensorBoard event files without TensorFlow: TFRecord framing with CRC-32C, and the few
 * protobuf messages TensorBoard reads scalars from (Event, Summary, SessionLog), encoded by
 * hand. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "byol/metrics.h"
#include "fileio_internal.h"
#include "tb_events_internal.h"

/* ---- CRC-32C (Castagnoli), reflected, polynomial 0x82F63B78. ------------------------------ */

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
}

uint32_t byol_crc32c(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc32c_once, crc32c_init);
    const unsigned char *p = data;
    crc = ~crc;
    while (n--)
        crc = crc32c_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* TFRecord stores CRCs "masked", so that a CRC of data that holds CRCs stays well mixed. */
static uint32_t tb_masked_crc(const void *data, size_t n)
{
    uint32_t crc = byol_crc32c(0, data, n);
    return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

/* ---- Protobuf encoding: just what Event needs. -------------------------------------------- */

#define TB_PB_MAX 1024 /* an Event of a few short tags is a few hundred bytes */

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_BYTES = 2, PB_FIXED32 = 5 };

struct tb_pb {
    unsigned char b[TB_PB_MAX];
    size_t n;
    int full; /* a write did not fit: the message is unusable */
};

static void pb_raw(struct tb_pb *p, const void *data, size_t n)
{
    if (p->full || n > sizeof p->b - p->n) {
        p->full = 1;
        return;
    }
    memcpy(p->b + p->n, data, n);
    p->n += n;
}

static void pb_varint(struct tb_pb *p, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n++] = (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_raw(p, b, n);
}

static void pb_key(struct tb_pb *p, unsigned field, unsigned wire)
{
    pb_varint(p, (uint64_t)field << 3 | wire);
}

static void pb_fixed(struct tb_pb *p, uint64_t v, size_t bytes)
{
    unsigned char b[8];
    for (size_t i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    pb_raw(p, b, bytes);
}

static void pb_double(struct tb_pb *p, unsigned field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    pb_key(p, field, PB_FIXED64);
    pb_fixed(p, bits, 8);
}

static void pb_float(struct tb_pb *p, unsigned field, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    pb_key(p, field, PB_FIXED32);
    pb_fixed(p, bits, 4);
}

/* int64 fields are plain varints of the two's complement value (not zigzag). */
static void pb_int64(struct tb_pb *p, unsigned field, int64_t v)
{
    pb_key(p, field, PB_VARINT);
    pb_varint(p, (uint64_t)v);
}

static void pb_bytes(struct tb_pb *p, unsigned field, const void *data, size_t n)
{
    pb_key(p, field, PB_BYTES);
    pb_varint(p, n);
    pb_raw(p, data, n);
}

static void pb_message(struct tb_pb *p, unsigned field, const struct tb_pb *inner)
{
    if (inner->full)
        p->full = 1;
    pb_bytes(p, field, inner->b, inner->n);
}

/* Field numbers of tensorflow's event.proto and summary.proto. */
enum {
    EVENT_WALL_TIME = 1,
    EVENT_STEP = 2,
    EVENT_FILE_VERSION = 3,
    EVENT_SUMMARY = 5,
    EVENT_SESSION_LOG = 7,
    SUMMARY_VALUE = 1,
    VALUE_TAG = 1,
    VALUE_SIMPLE_VALUE = 2,
    SESSION_LOG_STATUS = 1,
    SESSION_LOG_START = 1,
};

/* ---- The writer. -------------------------------------------------------------------------- */

struct tb_writer {
    FILE *f;
    char path[PATH_MAX];
};

const char *tb_writer_path(const struct tb_writer *w)
{
    return w->path;
}

/* One TFRecord: length, masked CRC of the length, data, masked CRC of the data; then
 * flushed, so that a crash loses at most the record being written. */
static byol_status tb_write_record(struct tb_writer *w, const struct tb_pb *event)
{
    if (event->full)
        return byol_error(BYOL_ERR_INTERNAL, "%s: event larger than %d bytes", w->path, TB_PB_MAX);
    unsigned char head[12], tail[4];
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)((uint64_t)event->n >> (8 * i));
    uint32_t crc = tb_masked_crc(head, 8), dcrc = tb_masked_crc(event->b, event->n);
    for (int i = 0; i < 4; i++) {
        head[8 + i] = (unsigned char)(crc >> (8 * i));
        tail[i] = (unsigned char)(dcrc >> (8 * i));
    }
    if (fwrite(head, 1, sizeof head, w->f) != sizeof head ||
        fwrite(event->b, 1, event->n, w->f) != event->n ||
        fwrite(tail, 1, sizeof tail, w->f) != sizeof tail || fflush(w->f) != 0)
        return byol_error(BYOL_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    return BYOL_OK;
}

/* Seconds since the Unix epoch: every event carries its wall time. */
static double tb_wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void tb_event_head(struct tb_pb *e, double wall_time, int64_t step)
{
    memset(e, 0, sizeof *e);
    pb_double(e, EVENT_WALL_TIME, wall_time);
    if (step)
        pb_int64(e, EVENT_STEP, step);
}

byol_status tb_writer_scalars(struct tb_writer *w, int64_t step, const char *const *tags,
                              const float *values, int n)
{
    struct tb_pb e, summary = {.n = 0}, value;
    for (int i = 0; i < n; i++) {
        memset(&value, 0, sizeof value);
        pb_bytes(&value, VALUE_TAG, tags[i], strlen(tags[i]));
        pb_float(&value, VALUE_SIMPLE_VALUE, values[i]);
        pb_message(&summary, SUMMARY_VALUE, &value);
    }
    tb_event_head(&e, tb_wall_time(), step);
    pb_message(&e, EVENT_SUMMARY, &summary);
    return tb_write_record(w, &e);
}

/* The first records: the file version TensorBoard checks, then a SessionLog START at
 * resume_step + 1. TensorBoard's Python loader takes a START after the run's first one as a
 * restart and drops the values older files of the folder hold from that step on: those an
 * interrupted run wrote after its checkpoint, which this run writes again, or all of an older
 * run's after a fresh start (as the CSV is replaced). Its Rust loader drops them anyway, when
 * a step goes back. */
static byol_status tb_write_preamble(struct tb_writer *w, int64_t resume_step)
{
    static const char version[] = "brain.Event:2";
    struct tb_pb e, log = {.n = 0};
    tb_event_head(&e, tb_wall_time(), 0);
    pb_bytes(&e, EVENT_FILE_VERSION, version, sizeof version - 1);
    byol_status st = tb_write_record(w, &e);
    if (st != BYOL_OK)
        return st;
    pb_key(&log, SESSION_LOG_STATUS, PB_VARINT);
    pb_varint(&log, SESSION_LOG_START);
    tb_event_head(&e, tb_wall_time(), resume_step + 1);
    pb_message(&e, EVENT_SESSION_LOG, &log);
    return tb_write_record(w, &e);
}

/* events.out.tfevents.<unix time>.<hostname>.byolc, created exclusively; when a file of that
 * second exists (a quick restart), the next second's name, so names still sort by age. */
static byol_status tb_create_file(struct tb_writer *w, const char *dir)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    long long t = (long long)time(NULL);
    for (int tries = 0; tries < 1000; tries++, t++) {
        int len =
            snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s.byolc", dir, t, host);
        if (len < 0 || (size_t)len >= sizeof w->path)
            return byol_error(BYOL_ERR_INVALID, "%s: folder name too long", dir);
        int fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return byol_error(BYOL_ERR_IO, "cannot create %s: %s", w->path, strerror(errno));
        w->f = fdopen(fd, "wb");
        if (!w->f) {
            close(fd);
            return byol_error(BYOL_ERR_IO, "%s: %s", w->path, strerror(errno));
        }
        return BYOL_OK;
    }
    return byol_error(BYOL_ERR_IO, "%s: no free event file name near %lld", dir, t);
}

byol_status tb_writer_open(const char *dir, int64_t resume_step, struct tb_writer **out)
{
    *out = NULL;
    struct tb_writer *w = calloc(1, sizeof *w);
    if (!w)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", dir);
    byol_status st = byol_make_dirs(dir, 0777);
    if (st == BYOL_OK)
        st = tb_create_file(w, dir);
    if (st == BYOL_OK)
        st = tb_write_preamble(w, resume_step);
    if (st != BYOL_OK) {
        if (w->f) {
            fclose(w->f);
            unlink(w->path); /* no half-written file left behind */
        }
        free(w);
        return st;
    }
    *out = w;
    return BYOL_OK;
}

void tb_writer_close(struct tb_writer *w)
{
    if (!w)
        return;
    if (fflush(w->f) == 0)
        fsync(fileno(w->f));
    fclose(w->f);
    free(w);
}
