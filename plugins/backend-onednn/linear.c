/* Linear layers in backend-onednn through oneDNN's sgemm (row-major), whose beta lets dx and
 * dweight accumulate in place. Inputs and outputs are (N,F,1,1): one pixel per channel, so
 * every layout of them is plain (N,F). */
#include "onednn_internal.h"

byol_status od_linear_plan(struct od_ctx *ctx, struct od_plan *p)
{
    if (p->desc.u.linear.out_features < 1)
        return od_fail(ctx, BYOL_ERR_INVALID, "linear: out_features %d must be at least 1",
                       p->desc.u.linear.out_features);
    od_plan_note(p, 0, "fwd", "dnnl_sgemm");
    od_plan_note(p, 1, "bwd", "dnnl_sgemm");
    return BYOL_OK;
}

static byol_status gemm(struct od_ctx *ctx, const struct od_plan *p, char ta, char tb,
                        dnnl_dim_t m, dnnl_dim_t n, dnnl_dim_t k, const float *a, dnnl_dim_t lda,
                        const float *b, dnnl_dim_t ldb, float beta, float *c, dnnl_dim_t ldc)
{
    dnnl_status_t s = dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
    return s == dnnl_success ? BYOL_OK : od_dnnl_fail(ctx, p, "dnnl_sgemm", s);
}

byol_status od_linear_forward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    int n = p->desc.in[0].n, f = p->desc.in[0].c, o = p->desc.out.c;
    const float *bias = p->desc.u.linear.has_bias ? a->bias : NULL;
    float *y = a->y->data;
    for (int b = 0; bias && b < n; b++)
        for (int j = 0; j < o; j++)
            y[(size_t)b * o + j] = bias[j];
    /* y (N,O) = x (N,F) . weight (O,F)^T [+ y] */
    return gemm(ctx, p, 'N', 'T', n, o, f, a->x[0]->data, f, a->weight, f, bias ? 1.0f : 0.0f, y,
                o);
}

byol_status od_linear_backward(struct od_ctx *ctx, struct od_plan *p,
                               const struct byol_op_args *a)
{
    int n = p->desc.in[0].n, f = p->desc.in[0].c, o = p->desc.out.c;
    const float *dy = a->dy->data;
    float *dbias = p->desc.u.linear.has_bias ? a->dbias : NULL;
    byol_status st = BYOL_OK;
    if (a->dx[0]) /* dx (N,F) = dy (N,O) . weight (O,F) [+ dx] */
        st = gemm(ctx, p, 'N', 'N', n, f, o, dy, o, a->weight, f,
                  a->accumulate[0] ? 1.0f : 0.0f, a->dx[0]->data, f);
    if (st == BYOL_OK && a->dweight) /* dweight (O,F) += dy^T (O,N) . x (N,F) */
        st = gemm(ctx, p, 'T', 'N', o, f, n, dy, o, a->x[0]->data, f, 1.0f, a->dweight, f);
    for (int j = 0; st == BYOL_OK && dbias && j < o; j++) {
        double s = 0.0;
        for (int b = 0; b < n; b++)
            s += dy[(size_t)b * o + j];
        dbias[j] += (float)s;
    }
    return st;
}
