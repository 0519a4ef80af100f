/*
 * A plain-C fp32 streaming step of a Mamba stack, the peer the SsmGen step is measured against (issue 22 names
 * mamba.c, whose source this machine cannot reach; this is the same recurrent algorithm written here in the
 * style of such programs: row-major matrix-vector loops the compiler vectorizes, expf/logf from libm, one thread).
 * It reads a copy of the model's parameter buffer at the offsets of its tensor table (Hugging Face Mamba names:
 * RMSNorm, in_proj, depthwise causal conv, x_proj, dt_proj + softplus, selective scan, SiLU gate, out_proj,
 * residual; final RMSNorm and lm_head), so both sides step the same weights. A = -exp(A_log) is computed once, at
 * creation, as a program that loads its weights once would.
 * Build: gcc -O3 -march=native -ffast-math -shared -fPIC mamba_step.c -o libmamba_step.so -lm
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NORM, IN_PROJ, CONV_W, CONV_B, X_PROJ, DT_W, DT_B, A_LOG, D_SKIP, OUT_PROJ, PER_LAYER };

typedef struct {
    const float *p;
    long emb, norm_f, head, *layer; /* layer: PER_LAYER offsets per block */
    int vocab, d, e, n, r, width, layers;
    float *x, *u, *xz, *c, *dbc, *dt, *y, *h, *win; /* activations; h (layers, e, n), win (layers, e, width - 1) */
    float *a; /* A = -exp(A_log), (layers, e, n) */
} Mamba;

static void matvec(const float *w, const float *x, float *y, int out, int in) {
    for (int o = 0; o < out; o++) {
        const float *row = w + (long)o * in;
        float s = 0.0f;
        for (int i = 0; i < in; i++) s += row[i] * x[i];
        y[o] = s;
    }
}

static void rmsnorm(const float *x, const float *w, float *y, int d) {
    float ss = 0.0f;
    for (int i = 0; i < d; i++) ss += x[i] * x[i];
    float rs = 1.0f / sqrtf(ss / d + 1e-5f);
    for (int i = 0; i < d; i++) y[i] = x[i] * rs * w[i];
}

static float silu(float v) { return v / (1.0f + expf(-v)); }
static float softplus(float v) { return v > 20.0f ? v : logf(1.0f + expf(v)); }

Mamba *mamba_create(const float *p, const long *offsets, int vocab, int d, int e, int n, int r, int width, int layers) {
    Mamba *m = calloc(1, sizeof(Mamba));
    m->p = p; m->emb = offsets[0]; m->norm_f = offsets[1]; m->head = offsets[2];
    m->layer = malloc(sizeof(long) * PER_LAYER * layers);
    memcpy(m->layer, offsets + 3, sizeof(long) * PER_LAYER * layers);
    m->vocab = vocab; m->d = d; m->e = e; m->n = n; m->r = r; m->width = width; m->layers = layers;
    m->x = malloc(sizeof(float) * d); m->u = malloc(sizeof(float) * (d > vocab ? d : vocab));
    m->xz = malloc(sizeof(float) * 2 * e); m->c = malloc(sizeof(float) * e);
    m->dbc = malloc(sizeof(float) * (r + 2 * n)); m->dt = malloc(sizeof(float) * e); m->y = malloc(sizeof(float) * e);
    m->h = calloc((size_t)layers * e * n, sizeof(float)); m->win = calloc((size_t)layers * e * (width - 1), sizeof(float));
    m->a = malloc(sizeof(float) * layers * e * n);
    for (int l = 0; l < layers; l++)
        for (long i = 0; i < (long)e * n; i++) m->a[l * (long)e * n + i] = -expf(p[m->layer[l * PER_LAYER + A_LOG] + i]);
    return m;
}

void mamba_reset(Mamba *m) {
    memset(m->h, 0, sizeof(float) * m->layers * m->e * m->n);
    memset(m->win, 0, sizeof(float) * m->layers * m->e * (m->width - 1));
}

void mamba_free(Mamba *m) {
    free(m->layer); free(m->x); free(m->u); free(m->xz); free(m->c); free(m->dbc); free(m->dt); free(m->y);
    free(m->h); free(m->win); free(m->a); free(m);
}

void mamba_step(Mamba *m, int token, float *logits) {
    const float *p = m->p;
    int d = m->d, e = m->e, n = m->n, r = m->r, k = m->width;
    memcpy(m->x, p + m->emb + (long)token * d, sizeof(float) * d);
    for (int l = 0; l < m->layers; l++) {
        const long *o = m->layer + l * PER_LAYER;
        float *h = m->h + (long)l * e * n, *win = m->win + (long)l * e * (k - 1);
        rmsnorm(m->x, p + o[NORM], m->u, d);
        matvec(p + o[IN_PROJ], m->u, m->xz, 2 * e, d); /* x then z */
        for (int ch = 0; ch < e; ch++) {
            const float *w = p + o[CONV_W] + (long)ch * k;
            float *s = win + (long)ch * (k - 1), xv = m->xz[ch];
            float v = p[o[CONV_B] + ch] + w[k - 1] * xv;
            for (int j = 0; j < k - 1; j++) v += w[j] * s[j];
            for (int j = 0; j < k - 2; j++) s[j] = s[j + 1];
            s[k - 2] = xv;
            m->c[ch] = silu(v);
        }
        matvec(p + o[X_PROJ], m->c, m->dbc, r + 2 * n, e);
        matvec(p + o[DT_W], m->dbc, m->dt, e, r);
        const float *b = m->dbc + r, *cc = m->dbc + r + n, *a = m->a + (long)l * e * n;
        for (int ch = 0; ch < e; ch++) {
            float dt = softplus(m->dt[ch] + p[o[DT_B] + ch]), u = m->c[ch], acc = 0.0f;
            float *hc = h + (long)ch * n;
            for (int j = 0; j < n; j++) {
                hc[j] = expf(dt * a[(long)ch * n + j]) * hc[j] + dt * u * b[j];
                acc += cc[j] * hc[j];
            }
            m->y[ch] = (acc + p[o[D_SKIP] + ch] * u) * silu(m->xz[e + ch]);
        }
        matvec(p + o[OUT_PROJ], m->y, m->u, d, e);
        for (int i = 0; i < d; i++) m->x[i] += m->u[i];
    }
    rmsnorm(m->x, p + m->norm_f, m->u, d);
    matvec(p + m->head, m->u, logits, m->vocab, d);
}
