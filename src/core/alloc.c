/* SPDX-License-Identifier: MIT */
/* alloc.c — the allocator hook: every libmm allocation goes through an mmi_alloc, which is a
 * caller's mm_allocator or the default aligned malloc/free. */
#include "mmi.h"

#include <stdlib.h>
#include <string.h>

static void *default_alloc(void *ud, size_t size, size_t align)
{
    void *p = NULL;
    (void)ud;
    /* posix_memalign (POSIX 2001) rather than C11 aligned_alloc, so hosts built as C99 or
     * with a libc lacking C11 still link; align is MMI_ALIGN, a power of two multiple of
     * sizeof(void *) as it requires. */
    if (align < sizeof(void *)) align = sizeof(void *);
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

static void default_free(void *ud, void *ptr, size_t size)
{
    (void)ud;
    (void)size;
    free(ptr);
}

int mmi_alloc_init(mmi_alloc *out, const mm_allocator *a, mmi_err *e)
{
    if (!a) {
        out->alloc_fn = default_alloc;
        out->free_fn = default_free;
        out->ud = NULL;
        return MM_OK;
    }
    if (a->struct_size < sizeof(mm_allocator))
        return mmi_fail(e, MM_E_INVALID_ARG, "allocator struct_size is %u, expected at least %u",
                        (unsigned)a->struct_size, (unsigned)sizeof(mm_allocator));
    if (!a->alloc_fn || !a->free_fn)
        return mmi_fail(e, MM_E_INVALID_ARG, "allocator alloc_fn and free_fn must both be set");
    if (a->reserved0 != 0) return mmi_fail(e, MM_E_INVALID_ARG, "allocator reserved0 must be 0");
    out->alloc_fn = a->alloc_fn;
    out->free_fn = a->free_fn;
    out->ud = a->ud;
    return MM_OK;
}

size_t mmi_align_up(size_t size)
{
    if (size > SIZE_MAX - (MMI_ALIGN - 1)) return 0;
    return (size + MMI_ALIGN - 1) & ~(size_t)(MMI_ALIGN - 1);
}

void *mmi_malloc(const mmi_alloc *a, size_t size)
{
    if (size == 0) size = 1;
    if (mmi_align_up(size) == 0) return NULL;
    return a->alloc_fn(a->ud, size, MMI_ALIGN);
}

void *mmi_calloc(const mmi_alloc *a, size_t size)
{
    void *p = mmi_malloc(a, size);
    if (p) memset(p, 0, size ? size : 1);
    return p;
}

void mmi_free(const mmi_alloc *a, void *p, size_t size)
{
    if (!p) return;
    a->free_fn(a->ud, p, size ? size : 1);
}

mmi_carve mmi_carve_measure(void)
{
    mmi_carve c = {0, NULL, SIZE_MAX, 0};
    return c;
}

mmi_carve mmi_carve_at(void *base, size_t size)
{
    mmi_carve c = {0, (unsigned char *)base, size, 0};
    MMI_ASSERT(base != NULL);
    return c;
}

void *mmi_carve_take(mmi_carve *c, int64_t n, size_t elem_size)
{
    size_t bytes, end;
    void *p;
    if (c->overflow) return NULL;
    if (n < 0 || mmi_mul_size(&bytes, (size_t)n, elem_size) ||
        (bytes && !(bytes = mmi_align_up(bytes))) || mmi_add_size(&end, c->off, bytes) ||
        end > c->size) {
        c->overflow = 1;
        /* A carve never outgrows the measure of the same walk (that is the point of the
         * carver); a measure that overflows is reported by the caller. */
        MMI_ASSERT(c->base == NULL);
        if (!c->base) c->off = SIZE_MAX;
        return NULL;
    }
    p = c->base ? c->base + c->off : NULL;
    c->off = end;
    return p;
}
