/* pattern: one splitmix64 hash per 8 stream bytes keeps generation well above link speed. */
#include "pattern.h"

#include <string.h>

#define GOLDEN 0x9e3779b97f4a7c15ULL

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t pattern_seed(uint64_t conn, uint64_t generation)
{
	return mix64(conn * GOLDEN ^ mix64(generation + 1));
}

static uint64_t word_at(uint64_t seed, uint64_t block)
{
	return mix64(seed + block * GOLDEN);
}

uint8_t pattern_byte(uint64_t seed, uint64_t off)
{
	return (uint8_t)(word_at(seed, off >> 3) >> (8 * (off & 7)));
}

/* Little-endian by construction so that the stream does not depend on the host. */
static void store_word(unsigned char *p, uint64_t w)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(w >> (8 * i));
}

void pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0 && (off & 7) != 0) {
		*p++ = pattern_byte(seed, off++);
		len--;
	}
	for (; len >= 8; len -= 8, off += 8, p += 8)
		store_word(p, word_at(seed, off >> 3));
	while (len > 0) {
		*p++ = pattern_byte(seed, off++);
		len--;
	}
}

size_t pattern_check(uint64_t seed, uint64_t off, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	unsigned char want[512];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(want) ? len - done : sizeof(want);

		pattern_fill(seed, off + done, want, n);
		if (memcmp(want, p + done, n) != 0) {
			for (size_t i = 0; i < n; i++) {
				if (want[i] != p[done + i])
					return done + i;
			}
		}
		done += n;
	}
	return len;
}

uint8_t chargen_byte(uint64_t off)
{
	uint64_t line = off / 74, col = off % 74;

	if (col == 72)
		return '\r';
	if (col == 73)
		return '\n';
	return (uint8_t)(32 + (line + col) % 95);
}

size_t chargen_check(uint64_t off, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != chargen_byte(off + i))
			return i;
	return len;
}
