/* SPDX-License-Identifier: MIT */
/*
 * mmi_policy_io.h — what the policy file code shares: policy_io.c (the tensor list, metadata,
 * validation and the weights), policy_ckpt.c (the training-state blocks of a checkpoint) and
 * policy_io_mem.c (the public save/load entry points over paths, buffers and callbacks).
 * Internal. docs/FORMAT.md describes the file.
 */
#ifndef MMI_POLICY_IO_H
#define MMI_POLICY_IO_H

#include "../io/mmi_io.h"
#include "mmi_policy.h"

#define MMI_POL_FORMAT_MAJOR 1
#define MMI_POL_FORMAT_MINOR 0
#define MMI_POL_NAME_LEN     96
#define MMI_POL_MAX_OUT      256
#define MMI_POL_NETS         10

/* What a listed tensor is, so load knows where it goes and what values are legal. */
enum {
    MMI_PIO_WEIGHT = 0, /* F32 network parameters, dst: float * */
    MMI_PIO_RMS_MEAN,   /* F64, any finite value, dst: double * */
    MMI_PIO_RMS_POS,    /* F64, finite and >= 0 (variance, count), dst: double * */
    MMI_PIO_BOUND,      /* F32 action bounds: checked finite, applied only by load_new */
    MMI_PIO_CKPT        /* a checkpoint block (policy_ckpt.c), aux: its table index */
};

typedef struct mmi_pio_ent {
    mmi_st_out t;
    char name[MMI_POL_NAME_LEN];
    int32_t role, aux;
    void *dst;
} mmi_pio_ent;

/* Checkpoint scratch: packed small blocks and the serialised optimizer of each network
 * (save), the same values read from a file and the temporary models holding a file's
 * optimizer state (load). Owned by one save or load call. */
#define MMI_CKPT_COUNTERS 11
#define MMI_CKPT_PARAMS   11
#define MMI_CKPT_STATS    9
#define MMI_CKPT_RNORM    3 /* reward normaliser: mean, var, count of the discounted returns */
typedef struct mmi_ckpt {
    int64_t cnt[MMI_CKPT_COUNTERS];
    uint64_t rng[4];
    double params[MMI_CKPT_PARAMS];
    double stats[MMI_CKPT_STATS];
    double rnorm[MMI_CKPT_RNORM];
    unsigned char *blob[MMI_POL_NETS]; /* save: model file bytes of network k (with optimizer) */
    size_t blob_size[MMI_POL_NETS];
    mm_model *tmp[MMI_POL_NETS]; /* load: network k as the checkpoint holds it */
} mmi_ckpt;

typedef struct mmi_pio_list {
    mmi_pio_ent e[MMI_POL_MAX_OUT];
    mmi_st_out outs[MMI_POL_MAX_OUT]; /* what a save plan borrows */
    int64_t n;
    int32_t legacy;     /* a 0.1 file: no format_version, algo as a number, no bounds */
    int32_t checkpoint; /* the file holds (or will hold) the training state */
    mmi_ckpt ck;
} mmi_pio_list;

/* The networks of p in file order with their tensor-name prefixes (NULL entries absent). */
void mmi_pio_nets(mm_policy *p, mm_model **m, const char **names);
/* Lists the weights-file tensors of p: networks, statistics and (unless L->legacy) bounds; the
 * checkpoint blocks are added by mmi_ckpt_list (save) or mmi_ckpt_check (load). Returns MM_OK or MM_E_RANGE / MM_E_STATE / MM_E_NOMEM (text in p->err). */
int mmi_pio_list_make(mm_policy *p, mmi_pio_list *L, const char *fn);
/* Frees what the list owns (checkpoint blobs and temporary models). */
void mmi_pio_list_free(mm_policy *p, mmi_pio_list *L);
/* Appends one entry; NULL when the table is full. */
mmi_pio_ent *mmi_pio_add(mmi_pio_list *L, const char *name, int32_t dtype, int32_t role,
                         const void *data, int64_t rows, int64_t cols);
/* Plans the file of p (metadata + the listed tensors). */
int mmi_pio_plan(mm_policy *p, mmi_pio_list *L, mmi_st_plan *plan, const char *fn);
/* Validates a parsed file against p and, when everything holds, copies it in (weights,
 * statistics and, for a checkpoint, the training state). Nothing changes on failure. */
int mmi_pio_apply(mm_policy *p, const mmi_st_file *f, const char *fn);
/* Reads the architecture a file describes into o (algo, spaces, network, normalisation) on
 * top of whatever o holds; bounds point into lo/hi (act_dim floats each, caller's space). */
int mmi_pio_read_arch(const mmi_st_file *f, mm_policy_opts *o, float *lo, float *hi, int64_t cap,
                      mmi_err *e);
/* Name of an algorithm in files ("td3"), or NULL. */
const char *mmi_pio_algo_name(int32_t algo);
/* Copies an 8-byte little-endian tensor (F64, I64, U64) into dst. */
void mmi_pio_read_le64(const mmi_st_file *f, const mmi_st_tensor *t, void *dst);

/* ---- checkpoint blocks (policy_ckpt.c) ------------------------------------------------------ */
/* Adds the training-state tensors to L (packs counters, RNG, settings, statistics; serialises
 * every network that has an optimizer). */
int mmi_ckpt_list(mm_policy *p, mmi_pio_list *L, const char *fn);
/* Validates the checkpoint blocks of f (present, shapes, values in range) and prepares the
 * optimizer copies; changes nothing in p. */
int mmi_ckpt_check(mm_policy *p, const mmi_st_file *f, mmi_pio_list *L, const char *fn);
/* Copies the validated training state into p (cannot fail). Runs before the weights are
 * copied: the optimizer copies also carry parameters, which the weights then replace. */
void mmi_ckpt_apply(mm_policy *p, const mmi_st_file *f, mmi_pio_list *L);

#endif /* MMI_POLICY_IO_H */
