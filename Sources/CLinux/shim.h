// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module is built without.
// Declarations only: the functions are in libc.
#include <stdint.h>

// sync_file_range(2): start writeback of a file range without waiting for it.
int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags);
#define KILN_SYNC_FILE_RANGE_WRITE 2

// O_DIRECT: glibc defines it only under _GNU_SOURCE, and its value differs between architectures.
// 0 where unknown: blobs are then written through the page cache only.
#if defined(__x86_64__) || defined(__i386__)
#define KILN_O_DIRECT 040000
#elif defined(__aarch64__) || defined(__arm__)
#define KILN_O_DIRECT 0200000
#else
#define KILN_O_DIRECT 0
#endif
