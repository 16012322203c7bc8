/* asan: whether AddressSanitizer is on, and its poisoning, for the modules
 * that hand out memory of their own (the arenas, the free list): under ASan
 * they keep what nobody holds poisoned, so that a use of it is reported as
 * a use of freed memory would be. Without ASan the macros compile to
 * nothing. gcc defines __SANITIZE_ADDRESS__; clang before 22 only answers
 * __has_feature. */
#ifndef CF_ASAN_H
#define CF_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define CF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF_ASAN 1
#endif
#endif

#ifdef CF_ASAN
#include <sanitizer/asan_interface.h>
#define CF_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define CF_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#define CF_POISONED(p) __asan_address_is_poisoned(p)
#else
#define CF_POISON(p, n) ((void)(p), (void)(n))
#define CF_UNPOISON(p, n) ((void)(p), (void)(n))
#define CF_POISONED(p) ((void)(p), 0)
#endif

#endif
