/* SPDX-License-Identifier: MIT */
/* status.c — static names and descriptions of the MM_E_* codes. */
#include "mmi.h"

typedef struct {
    int code;
    const char *name;
    const char *text;
} status_entry;

static const status_entry k_status[] = {
    {MM_OK, "MM_OK", "success"},
    {MM_E_INVALID_ARG, "MM_E_INVALID_ARG", "invalid argument"},
    {MM_E_NOMEM, "MM_E_NOMEM", "out of memory"},
    {MM_E_SHAPE, "MM_E_SHAPE", "tensor shape mismatch"},
    {MM_E_DTYPE, "MM_E_DTYPE", "unsupported data type"},
    {MM_E_RANGE, "MM_E_RANGE", "value out of range or beyond reserved size"},
    {MM_E_STATE, "MM_E_STATE", "call not valid in the current state"},
    {MM_E_UNSUPPORTED, "MM_E_UNSUPPORTED", "unsupported parameter or feature"},
    {MM_E_FORMAT, "MM_E_FORMAT", "malformed file or buffer"},
    {MM_E_VERSION, "MM_E_VERSION", "version not supported by this library"},
    {MM_E_IO, "MM_E_IO", "input/output error"},
    {MM_E_NUMERIC, "MM_E_NUMERIC", "non-finite value (NaN or Inf)"},
    {MM_E_BUFFER_TOO_SMALL, "MM_E_BUFFER_TOO_SMALL", "output buffer too small"},
    {MM_E_INTERNAL, "MM_E_INTERNAL", "internal error (a bug in libmm)"},
};

static const status_entry *find_status(int code)
{
    for (size_t i = 0; i < sizeof k_status / sizeof k_status[0]; i++)
        if (k_status[i].code == code) return &k_status[i];
    return NULL;
}

MM_API const char *mm_status_str(int status)
{
    const status_entry *s = find_status(status);
    return s ? s->text : "unknown status";
}

MM_API const char *mm_status_name(int status)
{
    const status_entry *s = find_status(status);
    return s ? s->name : "MM_E_UNKNOWN";
}
