/* SPDX-License-Identifier: MIT */
/* error.c — per-handle error text. No global or thread-local error state (see mm.h). */
#include "mmi.h"

#include <stdio.h>
#include <string.h>

int mmi_fail(mmi_err *e, int code, const char *fmt, ...)
{
    va_list ap;
    if (!e) return code;
    va_start(ap, fmt);
    /* vsnprintf truncates safely; a message is diagnostic text, so truncation is acceptable. */
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void mmi_err_clear(mmi_err *e)
{
    if (e) e->msg[0] = '\0';
}

void mmi_err_export(const mmi_err *e, char *buf, size_t n)
{
    size_t len;
    if (!e || !buf || n == 0) return;
    len = strlen(e->msg);
    if (len >= n) len = n - 1;
    memcpy(buf, e->msg, len);
    buf[len] = '\0';
}
