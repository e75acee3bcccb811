// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module is built without.
// Declarations only: the functions are in libc.
#include <stdint.h>

// sync_file_range(2): start writeback of a file range without waiting for it.
int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags);
#define KILN_SYNC_FILE_RANGE_WRITE 2
