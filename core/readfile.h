/* readfile: reads a small file whole (CA bundles, certificates, tokens,
 * kubeconfigs), bounded, for the modules that re-read them. */
#ifndef SMI_READFILE_H
#define SMI_READFILE_H

#include <stddef.h>

/* The file's bytes plus a NUL (owned, caller frees), at most max_bytes;
 * *len_out (may be NULL) gets the length.  NULL with "PATH: problem". */
char *readfile_all(const char *path, size_t max_bytes, size_t *len_out, char *err, size_t err_size);

#endif
