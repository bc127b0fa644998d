/* acl: CIDR rules and xinetd's verdict, see acl.h. */
#include "echod/acl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int key_is_v4(const uint8_t key[16])
{
	return memcmp(key, v4_prefix, sizeof(v4_prefix)) == 0;
}

/* 1 when the first bits of a and b agree. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff00u >> rest)) == 0;
}

/* 1 when a has a bit set beyond the first bits. */
static int host_bits_set(const uint8_t a[16], unsigned bits)
{
	for (unsigned i = bits; i < 128; i++)
		if (a[i / 8] & (0x80u >> (i % 8)))
			return 1;
	return 0;
}

static void clear_host_bits(uint8_t a[16], unsigned bits)
{
	for (unsigned i = bits; i < 128; i++)
		a[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

/* Strict decimal prefix length, at most max. */
static int parse_bits(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (*s == '\0' || strlen(s) > 3)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Splits "ADDR[/BITS]" (ADDR perhaps in brackets) into host and bits text. */
static int split(const char *text, char *host, size_t hostlen, const char **bits)
{
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);

	*bits = slash != NULL ? slash + 1 : NULL;
	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		text++;
		len -= 2;
	}
	if (len == 0 || len >= hostlen)
		return -1;
	memcpy(host, text, len);
	host[len] = '\0';
	return 0;
}

static int address(const char *host, struct acl_rule *r, unsigned *max)
{
	struct in_addr a4;

	memset(r, 0, sizeof(*r));
	if (inet_pton(AF_INET, host, &a4) == 1) {
		memcpy(r->addr, v4_prefix, sizeof(v4_prefix));
		memcpy(r->addr + 12, &a4, 4);
		r->v4 = 1;
		*max = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, host, r->addr) == 1) {
		r->v4 = key_is_v4(r->addr);
		*max = 128;
		return 0;
	}
	return -1;
}

int acl_parse(const char *text, struct acl_rule *r, char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN + 2], fixed[INET6_ADDRSTRLEN + 8];
	const char *bits_text;
	unsigned max, bits;

	if (split(text, host, sizeof(host), &bits_text) < 0 || address(host, r, &max) < 0) {
		snprintf(why, whylen,
			 "invalid value '%.80s' (expected an IPv4 or IPv6 address, "
			 "or ADDRESS/BITS)",
			 text);
		return -1;
	}
	bits = max;
	if (bits_text != NULL && parse_bits(bits_text, max, &bits) < 0) {
		snprintf(why, whylen, "invalid value '%.80s' (the prefix length is 0 to %u)", text,
			 max);
		return -1;
	}
	r->bits = (uint8_t)(max == 32 ? 96 + bits : bits);
	if (r->v4 && r->bits < 96) {
		snprintf(why, whylen,
			 "invalid value '%.80s' (an IPv4-mapped prefix is at least /96)", text);
		return -1;
	}
	if (host_bits_set(r->addr, r->bits)) {
		struct acl_rule net = *r;

		clear_host_bits(net.addr, net.bits);
		acl_format(&net, fixed, sizeof(fixed));
		snprintf(why, whylen, "invalid value '%.80s' (bits set past the prefix; %s?)", text,
			 fixed);
		return -1;
	}
	return 0;
}

int acl_add(struct acl_list *l, const char *text, char *why, size_t whylen)
{
	if (*text == '\0') {
		l->n = 0;
		return 0;
	}
	if (l->n == ACL_MAX) {
		snprintf(why, whylen, "too many rules (at most %d)", ACL_MAX);
		return -1;
	}
	if (acl_parse(text, &l->v[l->n], why, whylen) < 0)
		return -1;
	l->n++;
	return 0;
}

void acl_format(const struct acl_rule *r, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];

	if (r->v4)
		inet_ntop(AF_INET, r->addr + 12, host, sizeof(host));
	else
		inet_ntop(AF_INET6, r->addr, host, sizeof(host));
	snprintf(out, outlen, "%s/%u", host, r->v4 ? r->bits - 96u : r->bits);
}

int acl_match(const struct acl_list *l, const uint8_t key[16])
{
	int v4 = key_is_v4(key), best = -1;

	for (unsigned i = 0; i < l->n; i++) {
		const struct acl_rule *r = &l->v[i];

		if (r->v4 == v4 && (int)r->bits > best && prefix_equal(r->addr, key, r->bits))
			best = r->bits;
	}
	return best;
}

int acl_permits(const struct acl_list *allow, const struct acl_list *deny, const uint8_t key[16])
{
	int a = acl_match(allow, key), d = acl_match(deny, key);

	if (d >= 0 && d >= a)
		return 0;
	return allow->n == 0 || a >= 0;
}
