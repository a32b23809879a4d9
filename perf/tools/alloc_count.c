/* LD_PRELOAD shim for perf/allocs.sh: counts heap allocations (malloc, calloc, realloc,
 * the aligned variants; C++'s operator new goes through malloc) and frees of a whole
 * process into a small file shared with the script, so the script reads the counts of a
 * running server before and after a load without stopping or signalling it.
 * Build: cc -O2 -shared -fPIC -o alloc_count.so alloc_count.c
 * Use:   ALLOC_COUNT_FILE=/tmp/counts LD_PRELOAD=./alloc_count.so server ...
 * The file holds two native-endian uint64: allocations, frees. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* glibc's own entry points: calling them avoids dlsym, which itself allocates. */
extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

struct counts {
  uint64_t allocs;
  uint64_t frees;
};

/* Until the constructor has mapped the file (and if it cannot), counts go here. */
static struct counts fallback;
static struct counts* counts = &fallback;

__attribute__((constructor)) static void map_counts(void) {
  const char* path = getenv("ALLOC_COUNT_FILE");
  if (!path) return;
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (ftruncate(fd, sizeof(struct counts)) == 0) {
    void* p = mmap(NULL, sizeof(struct counts), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      struct counts* shared = p;
      shared->allocs = __atomic_load_n(&fallback.allocs, __ATOMIC_RELAXED);
      shared->frees = __atomic_load_n(&fallback.frees, __ATOMIC_RELAXED);
      counts = shared;
    }
  }
  close(fd);
}

static void count_alloc(void) { __atomic_fetch_add(&counts->allocs, 1, __ATOMIC_RELAXED); }

void* malloc(size_t n) {
  count_alloc();
  return __libc_malloc(n);
}

void* calloc(size_t n, size_t size) {
  count_alloc();
  return __libc_calloc(n, size);
}

/* A realloc may move the block (an allocation) or not; it is counted as one either way,
 * since it is a trip into the allocator. */
void* realloc(void* p, size_t n) {
  count_alloc();
  return __libc_realloc(p, n);
}

void* memalign(size_t align, size_t n) {
  count_alloc();
  return __libc_memalign(align, n);
}

void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }

int posix_memalign(void** out, size_t align, size_t n) {
  void* p = memalign(align, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

void free(void* p) {
  if (p) __atomic_fetch_add(&counts->frees, 1, __ATOMIC_RELAXED);
  __libc_free(p);
}
