/*
 * Symbol visibility: libatrest is built with hidden visibility, and only
 * what its public headers mark ATREST_EXTERN is exported.
 */
#ifndef ATREST_EXPORT_H
#define ATREST_EXPORT_H

#if defined(__GNUC__)
#define ATREST_EXTERN __attribute__((visibility("default")))
#else
#define ATREST_EXTERN
#endif

#endif
