/* Pictures of a run (include/byol/plot.h): a metrics file with known curves drawn to a PNG,
 * decoded back with libpng; the picture has its size, and each curve's pixels rise and fall
 * with the data (a falling loss is drawn from top left to bottom right, a kNN accuracy that
 * rises the other way). Broken metrics files fail naming the file and line. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/plot.h"
#include "testutil.h"

/* The decoded PNG: RGB rows. */
static unsigned char *read_png(const char *path, int *w, int *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return NULL;
    img.format = PNG_FORMAT_RGB;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px);
        png_image_free(&img);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return px;
}

/* In the panel whose left edge is x0 (of width pw) and top y0 (height ph): the mean row of
 * the pixels of colour rgb in the panel's first and last tenth of columns. */
static void curve_ends(const unsigned char *px, int w, int x0, int y0, int pw, int ph,
                       const unsigned char rgb[3], double *left, double *right)
{
    double sum[2] = {0, 0};
    int n[2] = {0, 0};
    for (int y = y0; y < y0 + ph; y++)
        for (int x = x0; x < x0 + pw; x++) {
            const unsigned char *p = px + ((size_t)y * w + x) * 3;
            if (memcmp(p, rgb, 3) != 0)
                continue;
            int side = x < x0 + pw / 2 ? 0 : 1;
            sum[side] += y;
            n[side]++;
        }
    *left = n[0] ? sum[0] / n[0] : -1;
    *right = n[1] ? sum[1] / n[1] : -1;
}

static void test_curves(void)
{
    const char *dir = byol_test_tmpdir("plot");
    const char *csv = byol_test_path(dir, "m.csv"), *png = byol_test_path(dir, "c.png");
    FILE *f = fopen(csv, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "step,loss,lr,tau,images_per_s,elapsed_s,knn_top1\n");
    for (int s = 1; s <= 200; s++) {
        fprintf(f, "%d,%g,%g,0.99,50,%d,", s, 4.0 * exp(-s / 60.0), 3e-4 * s / 200.0, s);
        if (s % 20 == 0)
            fprintf(f, "%g", 0.3 + 0.6 * s / 200.0);
        fprintf(f, "\n");
    }
    fclose(f);
    BYOL_CHECK_OK(byol_plot_metrics(csv, png));
    int w = 0, h = 0;
    unsigned char *px = read_png(png, &w, &h);
    CU_ASSERT_FATAL(px != NULL);
    CU_ASSERT_EQUAL(w, 1200);
    CU_ASSERT_EQUAL(h, 800);
    static const unsigned char blue[3] = {31, 90, 180}, orange[3] = {214, 96, 24};
    double l, r;
    curve_ends(px, w, 0, 0, 600, 400, orange, &l, &r); /* the loss's running mean: falls */
    printf("  loss mean: left rows %.0f, right rows %.0f\n", l, r);
    CU_ASSERT(l > 0 && r > 0 && l < r - 100);
    curve_ends(px, w, 600, 0, 600, 400, blue, &l, &r); /* the lr: rises */
    printf("  lr: left rows %.0f, right rows %.0f\n", l, r);
    CU_ASSERT(l > 0 && r > 0 && l > r + 100);
    curve_ends(px, w, 0, 400, 600, 400, blue, &l, &r); /* kNN: rises */
    printf("  knn: left rows %.0f, right rows %.0f\n", l, r);
    CU_ASSERT(l > 0 && r > 0 && l > r + 50);
    free(px);
    byol_test_remove_tree(dir);
}

static void test_broken(void)
{
    const char *dir = byol_test_tmpdir("plot");
    const char *csv = byol_test_path(dir, "m.csv"), *png = byol_test_path(dir, "c.png");
    static const char *const cases[][2] = {
        {"step,loss\n1,0.5\n2,abc\n", "m.csv:3: column 2 (loss) is not a number"},
        {"step,loss\n1,0.5,7\n", "m.csv:2: more values than the header's 2"},
        {"loss\n0.5\n", "not a metrics file (no 'step' column)"},
        {"{\"step\":1,\"loss\":\"x\"}\n", "m.csv:1: the value of \"loss\" is not a number"},
        {"", "not a metrics file"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        byol_test_write_file(csv, cases[i][0], strlen(cases[i][0]));
        CU_ASSERT_EQUAL(byol_plot_metrics(csv, png), BYOL_ERR_FORMAT);
        BYOL_ASSERT_MSG_HAS(cases[i][1]);
    }
    CU_ASSERT_NOT_EQUAL(byol_plot_metrics(byol_test_path(dir, "none.csv"), png), BYOL_OK);
    BYOL_ASSERT_MSG_HAS("none.csv");
    byol_test_remove_tree(dir);
}

int main(int argc, char **argv)
{
    static const struct byol_test_case cases[] = {{"curves follow the data", test_curves, 0},
                                                  {"broken metrics files", test_broken, 0},
                                                  {NULL, NULL, 0}};
    return byol_test_main(argc, argv, "plot", cases);
}
