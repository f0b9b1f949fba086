/* PNG (libpng) and JPEG (libjpeg-turbo) files to 8-bit gray or RGB pixels, converted the way
 * PIL's Image.open(...).convert("RGB" / "L") would, with library errors turned into statuses:
 * both libraries report fatal errors through a callback that longjmps back here. */
#include <math.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "byol/dataset.h"
#include "dataset_internal.h"
#include "image_internal.h"
#include "limits_internal.h"

/* PIL's ITU-R 601-2 luma in 16-bit fixed point: 0.299 R + 0.587 G + 0.114 B, rounded. */
static uint8_t luma(const uint8_t *rgb)
{
    return (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

/* Rows of `sc`-channel pixels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) to `dc` channels (1 or 3),
 * alpha dropped as PIL's convert does (no compositing). */
static void convert_pixels(const uint8_t *src, int sc, uint8_t *dst, int dc, size_t n)
{
    for (size_t i = 0; i < n; i++, src += sc, dst += dc) {
        int color = sc >= 3;
        if (dc == 1)
            dst[0] = color ? luma(src) : src[0];
        else if (color)
            memcpy(dst, src, 3);
        else
            dst[0] = dst[1] = dst[2] = src[0];
    }
}

static byol_status check_size(const char *path, const char *kind, uint64_t w, uint64_t h)
{
    if (w == 0 || h == 0)
        return byol_error(BYOL_ERR_FORMAT, "%s: corrupt %s (an empty %llux%llu image)", path, kind,
                          (unsigned long long)w, (unsigned long long)h);
    if (w > BYOL_IMAGE_MAX_SIDE || h > BYOL_IMAGE_MAX_SIDE || w * h > BYOL_IMAGE_MAX_PIXELS)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: image too large (%llux%llu %s; limits: %d per side, %llu pixels)",
                          path, (unsigned long long)w, (unsigned long long)h, kind,
                          BYOL_IMAGE_MAX_SIDE, (unsigned long long)BYOL_IMAGE_MAX_PIXELS);
    return BYOL_OK;
}

/* After a decoder jumped out: drop the half-made image and report why, either the status
 * set where it jumped (a size limit, out of memory) or the library's own message. */
static byol_status decode_failed(struct byol_image *out, byol_status st, const char *path,
                                 const char *kind, const char *msg)
{
    free(out->px);
    out->px = NULL;
    if (st != BYOL_OK)
        return st;
    return byol_error(BYOL_ERR_FORMAT, "%s: corrupt %s (%s)", path, kind, msg);
}

static byol_status alloc_image(const char *path, int w, int h, int c, struct byol_image *out)
{
    out->px = malloc((size_t)w * (size_t)h * (size_t)c);
    if (!out->px)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory for a %dx%d image", path, w, h);
    out->w = w;
    out->h = h;
    out->c = c;
    return BYOL_OK;
}

/* ---- PNG. ------------------------------------------------------------------------------ */

/* Everything the PNG decoder touches after setjmp lives here, not in locals, so a longjmp
 * cannot leave it stale. */
struct png_job {
    const char *path;
    const uint8_t *data;
    size_t size, pos;
    int channels;
    png_structp png;
    png_infop info;
    uint8_t *buf; /* decoded rows */
    png_bytep *rows;
    struct byol_image *out;
    byol_status st; /* set before a longjmp that is not a libpng error */
    char msg[256];
};

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png; /* ancillary-chunk trouble that PIL ignores as well */
    (void)msg;
}

static void png_on_read(png_structp png, png_bytep dst, size_t n)
{
    struct png_job *j = png_get_io_ptr(png);
    if (n > j->size - j->pos)
        png_error(png, "truncated file");
    memcpy(dst, j->data + j->pos, n);
    j->pos += n;
}

/* Ask libpng for 8-bit gray, gray+alpha, RGB or RGBA, whatever the file holds. */
static void png_setup_transforms(png_structp png, png_infop info)
{
    int type = png_get_color_type(png, info);
    if (png_get_bit_depth(png, info) == 16)
        png_set_strip_16(png); /* the high byte, as PIL's "RGB;16B" */
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    png_set_packing(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

/* Deflate expands at most 1032:1, so a file too small to hold the image's filtered rows (a
 * filter byte and the packed pixels per row) is refused before anything is allocated; then
 * the decoded rows and the output must fit in memory. */
static byol_status png_check_data_size(struct png_job *j, png_uint_32 w, png_uint_32 h)
{
    uint64_t raw = (uint64_t)h * ((uint64_t)png_get_rowbytes(j->png, j->info) + 1);
    if (raw / IMAGE_DEFLATE_MAX_RATIO > j->size)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: corrupt PNG (a %ux%u image needs %llu bytes of pixel data, more "
                          "than a file of %zu bytes can hold)",
                          j->path, (unsigned)w, (unsigned)h, (unsigned long long)raw, j->size);
    char what[64];
    snprintf(what, sizeof what, "decoding a %ux%u PNG", (unsigned)w, (unsigned)h);
    return byol_mem_check(j->path, what, (uint64_t)w * h * (4 + (unsigned)j->channels));
}

/* Runs under setjmp in png_decode: a libpng error returns there. */
static void png_decode_body(struct png_job *j)
{
    png_set_read_fn(j->png, j, png_on_read);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* Fuzz builds only: mutated chunks would nearly all stop at their CRC. */
    png_set_crc_action(j->png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#endif
    png_read_info(j->png, j->info);
    png_uint_32 w = png_get_image_width(j->png, j->info);
    png_uint_32 h = png_get_image_height(j->png, j->info);
    if ((j->st = check_size(j->path, "PNG", w, h)) != BYOL_OK ||
        (j->st = png_check_data_size(j, w, h)) != BYOL_OK)
        png_longjmp(j->png, 1);
    png_setup_transforms(j->png, j->info);
    int sc = png_get_channels(j->png, j->info);
    size_t rowbytes = png_get_rowbytes(j->png, j->info);
    if (sc < 1 || sc > 4 || rowbytes != (size_t)w * (size_t)sc)
        png_error(j->png, "unexpected pixel layout");
    j->buf = malloc(rowbytes * h);
    j->rows = malloc(h * sizeof *j->rows);
    if (!j->buf || !j->rows) {
        j->st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory for a %ux%u PNG", j->path,
                           (unsigned)w, (unsigned)h);
        png_longjmp(j->png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++)
        j->rows[y] = j->buf + y * rowbytes;
    png_read_image(j->png, j->rows);
    if ((j->st = alloc_image(j->path, (int)w, (int)h, j->channels, j->out)) != BYOL_OK)
        png_longjmp(j->png, 1);
    convert_pixels(j->buf, sc, j->out->px, j->channels, (size_t)w * h);
}

static byol_status png_decode(struct png_job *j)
{
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_on_error, png_on_warning);
    j->info = j->png ? png_create_info_struct(j->png) : NULL;
    if (!j->info) {
        png_destroy_read_struct(&j->png, NULL, NULL);
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory for a PNG decoder", j->path);
    }
    int failed = setjmp(png_jmpbuf(j->png));
    if (!failed)
        png_decode_body(j);
    png_destroy_read_struct(&j->png, &j->info, NULL);
    free(j->buf);
    free(j->rows);
    return failed ? decode_failed(j->out, j->st, j->path, "PNG", j->msg) : BYOL_OK;
}

/* ---- JPEG. ----------------------------------------------------------------------------- */

struct jpeg_job {
    struct jpeg_error_mgr err; /* first: libjpeg hands back a pointer to it */
    jmp_buf jump;
    const char *path;
    const uint8_t *data;
    size_t size;
    int channels;
    int header_only; /* stop after the header: image_width and image_height */
    int scale_num;   /* decode at scale_num / 8 (libjpeg-turbo's DCT-domain scaling) */
    int rect[4];     /* the original's pixels wanted, x0 y0 x1 y1 */
    struct jpeg_decompress_struct cinfo;
    uint8_t *buf; /* decoded rows */
    struct byol_image_part *out;
    byol_status st;
    char msg[JMSG_LENGTH_MAX];
    int corrupt;       /* a warning that means damaged data (which libjpeg would patch over) */
    int width, height; /* from the header */
};

static void jpeg_on_error(j_common_ptr cinfo)
{
    struct jpeg_job *j = (struct jpeg_job *)cinfo->err;
    int code = cinfo->err->msg_code;
    if (code == JERR_NO_BACKING_STORE || code == JERR_OUT_OF_MEMORY)
        j->st = byol_error(BYOL_ERR_FORMAT,
                           "%s: JPEG too large to decode (needs more than the %llu MiB limit of "
                           "decoder memory)",
                           j->path, (unsigned long long)(BYOL_JPEG_MAX_MEMORY >> 20));
    cinfo->err->format_message(cinfo, j->msg);
    longjmp(j->jump, 1);
}

/* Warnings (level -1) about damaged data make the image fail, as PIL refuses a truncated
 * JPEG; trace messages and harmless warnings (extraneous bytes, odd JFIF versions) pass. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    struct jpeg_job *j = (struct jpeg_job *)cinfo->err;
    int code = cinfo->err->msg_code;
    if (level != -1 || j->corrupt)
        return;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
        code == JWRN_MUST_RESYNC || code == JWRN_NOT_SEQUENTIAL || code == JWRN_BOGUS_PROGRESSION) {
        cinfo->err->format_message(cinfo, j->msg);
        j->corrupt = 1;
    }
}

/* PIL's CMYK JPEG: inverted (Adobe) samples, then nk - c * nk / 255 with nk = 255 - k. */
static void cmyk_to_rgb(const uint8_t *src, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++, src += 4, dst += 3) {
        unsigned nk = src[3];
        for (int k = 0; k < 3; k++) {
            unsigned t = (255u - src[k]) * nk + 128u;
            dst[k] = (uint8_t)(nk - ((t + (t >> 8)) >> 8));
        }
    }
}

/* Scaled pixels decoded beyond the wanted rectangle on each side: chroma upsampling reads
 * the neighbouring samples, which a cut at the rectangle's edge would replace by copies, so
 * with this margin the wanted pixels are exactly those of a whole decode. */
#define JPEG_CUT_MARGIN 16

/* The wanted rectangle (inside the image) at the decoding scale, widened to whole pixels and
 * by the margin, within the image: x0 y0 x1 y1, never empty. */
static void jpeg_scaled_rect(const struct jpeg_job *j, int r[4])
{
    double span[4];
    for (int i = 0; i < 4; i++)
        span[i] = (double)j->rect[i] * j->scale_num / 8.0;
    byol_span_pixels(span, JPEG_CUT_MARGIN, (int)j->cinfo.output_width, (int)j->cinfo.output_height,
                     r);
}

/* Rows r[1] .. r[3] of the scaled image, columns r[0] .. r[2] widened by libjpeg to whole
 * iMCU columns, into j->buf; every other row is skipped (entropy-decoded only, so damage
 * anywhere in the file is still seen). Returns the first column decoded and the width. */
static void jpeg_read_rect(struct jpeg_job *j, const int r[4], int *x0, int *w)
{
    struct jpeg_decompress_struct *ci = &j->cinfo;
    JDIMENSION xoff = (JDIMENSION)r[0], width = (JDIMENSION)(r[2] - r[0]);
    if (xoff > 0 || width < ci->output_width)
        jpeg_crop_scanline(ci, &xoff, &width);
    size_t row = (size_t)width * (size_t)ci->output_components;
    if (!(j->buf = malloc(row * (size_t)(r[3] - r[1])))) {
        j->st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory for a %ux%d JPEG region", j->path,
                           (unsigned)width, r[3] - r[1]);
        longjmp(j->jump, 1);
    }
    if (r[1] > 0)
        jpeg_skip_scanlines(ci, (JDIMENSION)r[1]);
    while (ci->output_scanline < (JDIMENSION)r[3]) {
        JSAMPROW p = j->buf + (ci->output_scanline - (JDIMENSION)r[1]) * row;
        jpeg_read_scanlines(ci, &p, 1);
    }
    if (ci->output_scanline < ci->output_height)
        jpeg_skip_scanlines(ci, ci->output_height - ci->output_scanline);
    *x0 = (int)xoff;
    *w = (int)width;
}

/* Runs under setjmp in jpeg_decode: a libjpeg error returns there. */
static void jpeg_decode_body(struct jpeg_job *j)
{
    struct jpeg_decompress_struct *ci = &j->cinfo;
    jpeg_mem_src(ci, j->data, (unsigned long)j->size);
    jpeg_read_header(ci, TRUE);
    if ((j->st = check_size(j->path, "JPEG", ci->image_width, ci->image_height)) != BYOL_OK)
        longjmp(j->jump, 1);
    j->width = (int)ci->image_width;
    j->height = (int)ci->image_height;
    if (j->header_only)
        return;
    char what[64];
    snprintf(what, sizeof what, "decoding a %ux%u JPEG", (unsigned)ci->image_width,
             (unsigned)ci->image_height);
    uint64_t px = (uint64_t)ci->image_width * ci->image_height;
    if ((j->st = byol_mem_check(j->path, what,
                                px * (4u + (unsigned)j->channels) * (unsigned)j->scale_num *
                                    (unsigned)j->scale_num / 64u)) != BYOL_OK)
        longjmp(j->jump, 1);
    int cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    ci->out_color_space = cmyk ? JCS_CMYK : ci->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    ci->scale_num = (unsigned)j->scale_num;
    ci->scale_denom = 8;
    jpeg_start_decompress(ci);
    int r[4], x0, w, sc = ci->output_components;
    jpeg_scaled_rect(j, r);
    jpeg_read_rect(j, r, &x0, &w);
    jpeg_finish_decompress(ci);
    if (j->corrupt)
        longjmp(j->jump, 1);
    int h = r[3] - r[1];
    if ((j->st = alloc_image(j->path, w, h, j->channels, &j->out->img)) != BYOL_OK)
        longjmp(j->jump, 1);
    if (sc == 4) { /* CMYK to RGB in place of the first 3/4 of the buffer, then as RGB */
        cmyk_to_rgb(j->buf, j->buf, (size_t)w * (size_t)h);
        sc = 3;
    }
    convert_pixels(j->buf, sc, j->out->img.px, j->channels, (size_t)w * (size_t)h);
    j->out->x0 = x0;
    j->out->y0 = r[1];
    j->out->scale_num = j->scale_num;
}

static byol_status jpeg_decode(struct jpeg_job *j)
{
    j->cinfo.err = jpeg_std_error(&j->err);
    j->err.error_exit = jpeg_on_error;
    j->err.emit_message = jpeg_on_message;
    int failed = setjmp(j->jump);
    if (!failed) {
        jpeg_create_decompress(&j->cinfo);
        /* A progressive file keeps every coefficient of the image: bounded, since a tiny file
         * can declare a huge one (libjpeg then fails with "backing store not supported"). */
        j->cinfo.mem->max_memory_to_use = BYOL_JPEG_MAX_MEMORY;
        jpeg_decode_body(j);
    }
    jpeg_destroy_decompress(&j->cinfo);
    free(j->buf);
    return failed ? decode_failed(&j->out->img, j->st, j->path, "JPEG", j->msg) : BYOL_OK;
}

/* A JPEG job on the heap (jmp_buf and cinfo are large for a worker's stack): decode, or read
 * the header only (out NULL: the size into *w, *h). */
static byol_status jpeg_run(const char *path, const uint8_t *data, size_t size, int channels,
                            int scale_num, const int rect[4], struct byol_image_part *out, int *w,
                            int *h)
{
    struct jpeg_job *j = calloc(1, sizeof *j);
    if (!j)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    struct byol_image_part none;
    *j = (struct jpeg_job){.path = path,
                           .data = data,
                           .size = size,
                           .channels = channels,
                           .header_only = !out,
                           .scale_num = scale_num,
                           .out = out ? out : &none};
    if (rect)
        memcpy(j->rect, rect, sizeof j->rect);
    memset(j->out, 0, sizeof *j->out);
    byol_status st = jpeg_decode(j);
    if (st == BYOL_OK && !out) {
        *w = j->width;
        *h = j->height;
    }
    free(j);
    return st;
}

/* ---- Counters. ------------------------------------------------------------------------ */

static atomic_uint_fast64_t decoded_images, decoded_pixels;

void byol_image_decode_stats(uint64_t *images, uint64_t *pixels)
{
    *images = atomic_load(&decoded_images);
    *pixels = atomic_load(&decoded_pixels);
}

static byol_status counted(byol_status st, const struct byol_image *img)
{
    if (st == BYOL_OK) {
        atomic_fetch_add(&decoded_images, 1);
        atomic_fetch_add(&decoded_pixels, (uint64_t)img->w * (uint64_t)img->h);
    }
    return st;
}

/* ---- Entry points. --------------------------------------------------------------------- */

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int is_png(const uint8_t *data, size_t size)
{
    return size >= 8 && memcmp(data, png_sig, 8) == 0;
}

static int is_jpeg(const uint8_t *data, size_t size)
{
    return size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff;
}

static byol_status unknown_format(const char *path, size_t size)
{
    return byol_error(BYOL_ERR_FORMAT, "%s: not a PNG or JPEG file (unknown signature%s)", path,
                      size < 8 ? ", or truncated" : "");
}

static byol_status decode_part(const char *path, const uint8_t *data, size_t size, int channels,
                               int scale_num, const int rect[4], struct byol_image_part *out)
{
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return byol_error(BYOL_ERR_INVALID, "%s: %d channels requested (1 or 3)", path, channels);
    if (is_png(data, size)) {
        struct png_job j = {
            .path = path, .data = data, .size = size, .channels = channels, .out = &out->img};
        out->scale_num = 8;
        return counted(png_decode(&j), &out->img);
    }
    if (is_jpeg(data, size))
        return counted(jpeg_run(path, data, size, channels, scale_num, rect, out, NULL, NULL),
                       &out->img);
    return unknown_format(path, size);
}

byol_status byol_image_decode(const char *path, const uint8_t *data, size_t size, int channels,
                              struct byol_image *out)
{
    static const int whole[4] = {0, 0, BYOL_IMAGE_MAX_SIDE, BYOL_IMAGE_MAX_SIDE};
    struct byol_image_part part;
    byol_status st = decode_part(path, data, size, channels, 8, whole, &part);
    *out = part.img;
    return st;
}

byol_status byol_image_decode_file(const char *path, int channels, struct byol_image *out)
{
    uint8_t *data;
    size_t size;
    memset(out, 0, sizeof *out);
    byol_status st = byol_dataset_read_file(path, "image", BYOL_IMAGE_MAX_FILE_BYTES, &data, &size);
    if (st != BYOL_OK)
        return st;
    st = byol_image_decode(path, data, size, channels, out);
    free(data);
    return st;
}

/* A PNG's size from its IHDR chunk, which must come first; libpng checks the rest when it
 * decodes. */
static byol_status png_probe(const char *path, const uint8_t *d, size_t size, int *w, int *h)
{
    if (size < 24 || memcmp(d + 12, "IHDR", 4) != 0)
        return byol_error(BYOL_ERR_FORMAT, "%s: corrupt PNG (%s)", path,
                          size < 24 ? "truncated file" : "IHDR chunk not first");
    uint64_t pw = (uint64_t)d[16] << 24 | (uint64_t)d[17] << 16 | (uint64_t)d[18] << 8 | d[19];
    uint64_t ph = (uint64_t)d[20] << 24 | (uint64_t)d[21] << 16 | (uint64_t)d[22] << 8 | d[23];
    byol_status st = check_size(path, "PNG", pw, ph);
    *w = (int)pw;
    *h = (int)ph;
    return st;
}

byol_status byol_image_file_read(const char *path, struct byol_image_file *f)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    byol_status st =
        byol_dataset_read_file(path, "image", BYOL_IMAGE_MAX_FILE_BYTES, &f->data, &f->size);
    if (st == BYOL_OK && is_png(f->data, f->size))
        st = png_probe(path, f->data, f->size, &f->w, &f->h);
    else if (st == BYOL_OK && is_jpeg(f->data, f->size)) {
        f->jpeg = 1;
        st = jpeg_run(path, f->data, f->size, 1, 8, NULL, NULL, &f->w, &f->h);
    } else if (st == BYOL_OK)
        st = unknown_format(path, f->size);
    if (st != BYOL_OK)
        byol_image_file_free(f);
    return st;
}

void byol_image_file_free(struct byol_image_file *f)
{
    free(f->data);
    f->data = NULL;
}

byol_status byol_image_decode_part(const struct byol_image_file *f, int channels, int scale_num,
                                   const int rect[4], struct byol_image_part *out)
{
    if (scale_num < 1 || scale_num > 8 || rect[0] < 0 || rect[1] < 0 || rect[2] <= rect[0] ||
        rect[3] <= rect[1] || rect[2] > f->w || rect[3] > f->h)
        return byol_error(BYOL_ERR_INVALID,
                          "%s: cannot decode [%d, %d, %d, %d] at %d/8 of a %dx%d "
                          "image",
                          f->path, rect[0], rect[1], rect[2], rect[3], scale_num, f->w, f->h);
    return decode_part(f->path, f->data, f->size, channels, f->jpeg ? scale_num : 8, rect, out);
}
