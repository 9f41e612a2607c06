/* SPDX-License-Identifier: MIT */
/* opts.c — the options-struct convention: struct_size first, fields only ever appended. */
#include "mmi.h"

#include <stddef.h>
#include <string.h>

/* The head every options struct starts with: uint32_t struct_size, uint32_t reserved0. */
#define MMI_OPTS_HEAD 8

int mmi_opts_copy(void *dst, const void *src, size_t lib_size, mmi_err *e, const char *fn)
{
    uint32_t size;
    if (!src) return mmi_fail(e, MM_E_INVALID_ARG, "%s: options are NULL", fn);
    memcpy(&size, src, sizeof size);
    if (size < MMI_OPTS_HEAD || size > MMI_OPTS_MAX_SIZE)
        return mmi_fail(e, MM_E_INVALID_ARG,
                        "%s: options struct_size is %u (expected %u..%u); call the _opts_init "
                        "function first",
                        fn, (unsigned)size, (unsigned)MMI_OPTS_HEAD, (unsigned)MMI_OPTS_MAX_SIZE);
    if (size > lib_size) {
        /* A newer caller: accept only if every field this library does not know is zero. */
        const unsigned char *tail = (const unsigned char *)src + lib_size;
        for (size_t i = 0; i < size - lib_size; i++)
            if (tail[i] != 0)
                return mmi_fail(e, MM_E_VERSION,
                                "%s: options struct_size %u is newer than this library's %u and "
                                "sets fields it does not know",
                                fn, (unsigned)size, (unsigned)lib_size);
        size = (uint32_t)lib_size;
    }
    /* An older caller's struct is shorter: the tail of dst keeps the defaults. */
    memcpy(dst, src, size);
    memcpy(dst, &(uint32_t){(uint32_t)lib_size}, sizeof(uint32_t));
    return MM_OK;
}

void mmi_opts_export_error(const void *src, size_t buf_at, size_t size_at, const mmi_err *e)
{
    char *buf;
    size_t n;
    /* Fields are only appended, so err_buf and err_buf_size sit at the same offsets in any
     * struct long enough to hold them, even one this library refused (a newer struct with
     * unknown fields): its text still reaches the caller. A shorter struct has no err_buf, and
     * a struct_size above MMI_OPTS_MAX_SIZE is an uninitialised struct whose pointer is not
     * trusted. */
    if (!mmi_opts_covers(src, buf_at + sizeof buf) || !mmi_opts_covers(src, size_at + sizeof n))
        return;
    memcpy(&buf, (const char *)src + buf_at, sizeof buf);
    memcpy(&n, (const char *)src + size_at, sizeof n);
    mmi_err_export(e, buf, n);
}

int mmi_opts_covers(const void *src, size_t end)
{
    uint32_t size;
    if (!src) return 0;
    memcpy(&size, src, sizeof size);
    return size >= end && size <= MMI_OPTS_MAX_SIZE;
}
