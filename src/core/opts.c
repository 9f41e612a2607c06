/* opts.c — the options-struct convention: struct_size first, fields only ever appended. */
#include "mmi.h"

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

int mmi_opts_covers(const void *src, size_t end)
{
    uint32_t size;
    if (!src) return 0;
    memcpy(&size, src, sizeof size);
    return size >= end && size <= MMI_OPTS_MAX_SIZE;
}
