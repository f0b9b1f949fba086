/* Curves into a PNG (include/byol/plot.h): a small rasteriser (lines, rectangles, text in a
 * 5x7 font of our own), "nice" axis ticks, libpng for the file, and a reader of byol-c's
 * metrics files (CSV with a header, JSON lines) for `byolctl plot` and curves.png. */
#include <ctype.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/plot.h"
#include "fileio_internal.h"

/* 5x7 glyphs for the plot's labels, drawn for byol-c: one byte per row, bit 4 the leftmost
 * column. */
static const char plot_font_chars[] = "%()+,-./0123456789:=_abcdefghijklmnopqrstuvwxyz";
static const unsigned char plot_font[][7] = {
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}, /* % */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}, /* ( */
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, /* ) */
    {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}, /* + */
    {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08}, /* , */
    {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}, /* - */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}, /* . */
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}, /* / */
    {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}, /* 0 */
    {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}, /* 1 */
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}, /* 2 */
    {0x0e, 0x11, 0x01, 0x06, 0x01, 0x11, 0x0e}, /* 3 */
    {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}, /* 4 */
    {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}, /* 5 */
    {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}, /* 6 */
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}, /* 8 */
    {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}, /* 9 */
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}, /* : */
    {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00}, /* = */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f}, /* _ */
    {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f}, /* a */
    {0x10, 0x10, 0x1e, 0x11, 0x11, 0x11, 0x1e}, /* b */
    {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e}, /* c */
    {0x01, 0x01, 0x0f, 0x11, 0x11, 0x11, 0x0f}, /* d */
    {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e}, /* e */
    {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08}, /* f */
    {0x0f, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e}, /* g */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}, /* h */
    {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e}, /* i */
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c}, /* j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, /* k */
    {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}, /* l */
    {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11}, /* m */
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}, /* n */
    {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e}, /* o */
    {0x1e, 0x11, 0x11, 0x11, 0x1e, 0x10, 0x10}, /* p */
    {0x0f, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x01}, /* q */
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}, /* r */
    {0x00, 0x00, 0x0f, 0x10, 0x0e, 0x01, 0x1e}, /* s */
    {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06}, /* t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d}, /* u */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04}, /* v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a}, /* w */
    {0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11}, /* x */
    {0x11, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e}, /* y */
    {0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f}, /* z */
};

#define PLOT_W 1200
#define PLOT_H 800

struct canvas {
    int w, h;
    unsigned char *px; /* RGB rows */
};

static const unsigned char INK[3] = {30, 30, 30}, GRID[3] = {225, 225, 225},
                           FAINT[3] = {170, 190, 225};
static const unsigned char SERIES[BYOL_PLOT_MAX_SERIES][3] = {
    {31, 90, 180}, {214, 96, 24}, {40, 150, 70}};

/* ---- drawing ----------------------------------------------------------------------------- */

static void dot(struct canvas *c, int x, int y, const unsigned char rgb[3])
{
    if (x >= 0 && y >= 0 && x < c->w && y < c->h)
        memcpy(c->px + ((size_t)y * c->w + x) * 3, rgb, 3);
}

static void rect(struct canvas *c, int x0, int y0, int x1, int y1, const unsigned char rgb[3])
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            dot(c, x, y, rgb);
}

/* Bresenham, `thick` pixels wide (1 or 2). */
static void line(struct canvas *c, int x0, int y0, int x1, int y1, int thick,
                 const unsigned char rgb[3])
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        dot(c, x0, y0, rgb);
        if (thick > 1) {
            dot(c, x0 + 1, y0, rgb);
            dot(c, x0, y0 + 1, rgb);
        }
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/* Text at (x, y) (its top left), `scale` pixels per font pixel; letters are drawn lower case,
 * characters the font lacks as spaces. Returns the width drawn. */
static int text(struct canvas *c, int x, int y, const char *s, int scale,
                const unsigned char rgb[3])
{
    int x0 = x;
    for (; *s; s++, x += 6 * scale) {
        const char *at = strchr(plot_font_chars, tolower((unsigned char)*s));
        if (!at || !*s)
            continue;
        const unsigned char *g = plot_font[at - plot_font_chars];
        int top = y + (strchr("gpqy", *at) ? 2 * scale : 0); /* descenders hang below */
        for (int r = 0; r < 7; r++)
            for (int k = 0; k < 5; k++)
                if (g[r] & (0x10 >> k))
                    rect(c, x + k * scale, top + r * scale, x + (k + 1) * scale - 1,
                         top + (r + 1) * scale - 1, rgb);
    }
    return x - x0;
}

static int text_width(const char *s, int scale)
{
    return (int)strlen(s) * 6 * scale;
}

/* ---- axes ------------------------------------------------------------------------------ */

/* The data's range of finite values of every series' x (axis 0) or y (axis 1); 0 if none. */
static int data_range(const struct byol_plot_panel *p, int axis, double *lo, double *hi)
{
    int any = 0;
    for (int s = 0; s < p->n_series; s++)
        for (size_t i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            double v = axis ? y : x;
            if (!isfinite(x) || (axis && !isfinite(y)))
                continue;
            *lo = any && *lo < v ? *lo : v;
            *hi = any && *hi > v ? *hi : v;
            any = 1;
        }
    return any;
}

/* A round step (1, 2 or 5 times a power of ten) for about `n` ticks over span. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* A tick label: few digits, no "-0". */
static void tick_label(double v, double step, char *buf, size_t n)
{
    if (fabs(v) < step * 1e-6)
        v = 0;
    double a = fabs(v);
    if (a != 0 && (a >= 1e5 || a < 1e-3))
        snprintf(buf, n, "%.2g", v);
    else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        snprintf(buf, n, "%.*f", dec > 6 ? 6 : dec, v);
    }
}

struct axes {
    int x0, y0, x1, y1;  /* plot area, pixels */
    double lo[2], hi[2]; /* x and y ranges */
};

static int to_px(const struct axes *a, int axis, double v)
{
    double t = (v - a->lo[axis]) / (a->hi[axis] - a->lo[axis]);
    return axis ? (int)lround(a->y1 - t * (a->y1 - a->y0))
                : (int)lround(a->x0 + t * (a->x1 - a->x0));
}

/* Ranges with a margin, ticks with grid lines and labels, the frame. */
static void draw_axes(struct canvas *c, struct axes *a, const struct byol_plot_panel *p,
                      const char *xlabel)
{
    for (int axis = 0; axis < 2; axis++) {
        double lo = 0, hi = 1;
        data_range(p, axis, &lo, &hi);
        if (axis && p->y_from_zero && lo > 0)
            lo = 0;
        if (hi - lo <= fabs(hi) * 1e-9) { /* flat: a window around the value */
            double d = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1;
            lo -= d;
            hi += d;
        } else if (axis) {
            double m = (hi - lo) * 0.05;
            lo -= lo == 0 && p->y_from_zero ? 0 : m;
            hi += m;
        }
        a->lo[axis] = lo;
        a->hi[axis] = hi;
        double step = nice_step(hi - lo, axis ? 5 : 6);
        for (double v = ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
            char label[32];
            tick_label(v, step, label, sizeof label);
            int at = to_px(a, axis, v);
            if (axis) {
                line(c, a->x0, at, a->x1, at, 1, GRID);
                text(c, a->x0 - 6 - text_width(label, 1), at - 3, label, 1, INK);
            } else {
                line(c, at, a->y0, at, a->y1, 1, GRID);
                text(c, at - text_width(label, 1) / 2, a->y1 + 6, label, 1, INK);
            }
        }
    }
    line(c, a->x0, a->y0, a->x0, a->y1, 1, INK);
    line(c, a->x0, a->y1, a->x1, a->y1, 1, INK);
    line(c, a->x1, a->y0, a->x1, a->y1, 1, INK);
    line(c, a->x0, a->y0, a->x1, a->y0, 1, INK);
    text(c, (a->x0 + a->x1 - text_width(xlabel, 1)) / 2, a->y1 + 20, xlabel, 1, INK);
}

/* A series as segments between its consecutive finite points (a sparse series, such as the
 * kNN accuracy measured every few hundred steps, is joined up), each point also marked when
 * the series is sparse. */
static void draw_series(struct canvas *c, const struct axes *a, const struct byol_plot_series *s,
                        const unsigned char rgb[3], int thick)
{
    size_t finite = 0;
    for (size_t i = 0; i < s->n; i++)
        finite += isfinite(s->x[i]) && isfinite(s->y[i]);
    int have = 0, px = 0, py = 0, sparse = finite * 4 < s->n || finite < 30;
    for (size_t i = 0; i < s->n; i++) {
        if (!isfinite(s->x[i]) || !isfinite(s->y[i]))
            continue;
        int x = to_px(a, 0, s->x[i]), y = to_px(a, 1, s->y[i]);
        if (have)
            line(c, px, py, x, y, thick, rgb);
        if (sparse || !have)
            rect(c, x - 2, y - 2, x + 2, y + 2, rgb);
        px = x;
        py = y;
        have = 1;
    }
}

static void draw_panel(struct canvas *c, int x, int y, int w, int h,
                       const struct byol_plot_panel *p, const char *xlabel)
{
    struct axes a = {x + 86, y + 40, x + w - 24, y + h - 46, {0, 0}, {1, 1}};
    text(c, x + 86, y + 12, p->title ? p->title : "", 2, INK);
    double lo, hi;
    if (!data_range(p, 1, &lo, &hi)) {
        line(c, a.x0, a.y1, a.x1, a.y1, 1, INK);
        text(c, (a.x0 + a.x1 - text_width("no data", 2)) / 2, (a.y0 + a.y1) / 2, "no data", 2,
             FAINT);
        return;
    }
    draw_axes(c, &a, p, xlabel);
    int lx = a.x1;
    for (int s = p->n_series - 1; s >= 0; s--) {
        const unsigned char *rgb = p->n_series > 1 && s == 0 ? FAINT : SERIES[s];
        draw_series(c, &a, &p->series[s], rgb, s == p->n_series - 1 ? 2 : 1);
        if (p->series[s].label && p->n_series > 1) { /* a legend, right-aligned above */
            lx -= text_width(p->series[s].label, 1) + 24;
            rect(c, lx, y + 20, lx + 12, y + 22, rgb);
            text(c, lx + 16, y + 18, p->series[s].label, 1, INK);
        }
    }
}

/* ---- PNG --------------------------------------------------------------------------------- */

struct png_buf {
    unsigned char *data;
    size_t n, cap;
    int failed;
};

static void png_buf_write(png_structp png, png_bytep data, size_t n)
{
    struct png_buf *b = png_get_io_ptr(png);
    if (b->failed)
        return;
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->n, data, n);
    b->n += n;
}

static void png_buf_flush(png_structp png)
{
    (void)png;
}

/* The canvas as PNG bytes in *b (libpng errors longjmp back here). */
static int encode_png(const struct canvas *c, struct png_buf *b)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, b, png_buf_write, png_buf_flush);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + (size_t)y * c->w * 3);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return b->failed ? -1 : 0;
}

static int write_bytes(int fd, void *user)
{
    const struct png_buf *b = user;
    return byol_write_all(fd, b->data, b->n);
}

byol_status byol_plot_write_png(const char *path, const char *xlabel,
                                const struct byol_plot_panel *panels, int n_panels)
{
    if (!path || !panels || n_panels < 1 || n_panels > 4)
        return byol_error(BYOL_ERR_INVALID, "byol_plot_write_png: 1 to 4 panels");
    struct canvas c = {PLOT_W, n_panels > 2 ? PLOT_H : PLOT_H / 2, NULL};
    c.px = malloc((size_t)c.w * c.h * 3);
    if (!c.px)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory for the picture", path);
    memset(c.px, 255, (size_t)c.w * c.h * 3);
    int cols = n_panels == 1 ? 1 : 2, pw = c.w / cols, ph = PLOT_H / 2;
    for (int i = 0; i < n_panels; i++)
        draw_panel(&c, (i % cols) * pw, (i / cols) * ph, pw, ph, &panels[i], xlabel ? xlabel : "");
    struct png_buf b = {0};
    byol_status st = encode_png(&c, &b) == 0
                         ? byol_file_replace(path, write_bytes, &b)
                         : byol_error(BYOL_ERR_NOMEM, "%s: cannot encode the picture", path);
    free(b.data);
    free(c.px);
    return st;
}
