/* SPDX-License-Identifier: MIT */
/* mmi_cplx.h — a minimal float64 complex type for the SSM kernels. libmm avoids C99
 * <complex.h> so the library also builds with compilers that lack it (__STDC_NO_COMPLEX__). */
#ifndef MMI_CPLX_H
#define MMI_CPLX_H

#include <math.h>

typedef struct mmi_cplx {
    double re, im;
} mmi_cplx;

static inline mmi_cplx mmi_c(double re, double im)
{
    mmi_cplx z;
    z.re = re, z.im = im;
    return z;
}
static inline mmi_cplx mmi_cadd(mmi_cplx a, mmi_cplx b) { return mmi_c(a.re + b.re, a.im + b.im); }
static inline mmi_cplx mmi_csub(mmi_cplx a, mmi_cplx b) { return mmi_c(a.re - b.re, a.im - b.im); }
static inline mmi_cplx mmi_cscale(mmi_cplx a, double s) { return mmi_c(a.re * s, a.im * s); }
static inline mmi_cplx mmi_cmul(mmi_cplx a, mmi_cplx b)
{
    return mmi_c(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
static inline mmi_cplx mmi_cdiv(mmi_cplx a, mmi_cplx b)
{
    double d = b.re * b.re + b.im * b.im;
    return mmi_c((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d);
}
static inline mmi_cplx mmi_cconj(mmi_cplx a) { return mmi_c(a.re, -a.im); }
static inline mmi_cplx mmi_cexp(double re, double im)
{
    double m = exp(re);
    return mmi_c(m * cos(im), m * sin(im));
}

#endif /* MMI_CPLX_H */
