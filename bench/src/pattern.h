/*
 * pattern: the bytes echo-bench sends. Byte k of a connection's stream is a
 * function of (seed, k) only, so any echoed chunk can be checked where it lands
 * without keeping a copy of what was sent, and a lost, duplicated or reordered
 * byte shows up as a mismatch at the next position (a hash, unlike a counter,
 * does not repeat after 256 bytes).
 */
#ifndef ECHO_BENCH_PATTERN_H
#define ECHO_BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A distinct stream per connection slot and per reconnection of that slot. */
uint64_t pattern_seed(uint64_t conn, uint64_t generation);
uint8_t pattern_byte(uint64_t seed, uint64_t off);
/* Writes stream bytes [off, off + len) to buf. */
void pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t len);
/* Index of the first byte of buf that is not stream byte off + index, or len if none. */
size_t pattern_check(uint64_t seed, uint64_t off, const void *buf, size_t len);

/* RFC 864's chargen stream (95 printable characters, 72-column lines rotating by
 * one, CRLF): byte off of it, and the index of the first byte of buf that differs
 * from stream bytes [off, off + len), or len. recv mode checks chargen servers so. */
uint8_t chargen_byte(uint64_t off);
size_t chargen_check(uint64_t off, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
