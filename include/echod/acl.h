/*
 * acl: the --allow / --deny access lists, xinetd's only_from / no_access.
 *
 * A rule is a CIDR prefix, IPv4 or IPv6 (a bare address is /32 or /128), kept over the
 * 16-byte address key of net_addr_key (IPv4 as ::ffff:a.b.c.d, its prefix + 96). The
 * families stay apart: an IPv4 rule matches IPv4 peers, the IPv4-mapped peers of a
 * dual-stack socket included; an IPv6 rule matches only IPv6 peers (::/0 is "every
 * IPv6 peer", not every peer). An IPv4-mapped rule (::ffff:10.0.0.0/104) is an IPv4 rule.
 *
 * The verdict is xinetd's: each list's longest matching prefix is found; a peer that
 * matches deny at least as specifically as allow is refused (deny wins a tie); with a
 * non-empty allow list, a peer matching none of it is refused; everyone else passes.
 * So "--deny=0.0.0.0/0 --allow=10.1.0.0/16" lets 10.1/16 in and keeps the rest out.
 *
 * Pure: no socket, no allocation; the lists live in struct config.
 */
#ifndef ECHOD_ACL_H
#define ECHOD_ACL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ACL_MAX 256 /* rules per list: matching is a linear scan on every accept */

struct acl_rule {
	uint8_t addr[16]; /* host bits zero */
	uint8_t bits;	  /* prefix length over the 16 bytes: 96 + n for IPv4 /n */
	uint8_t v4;	  /* 1: matches IPv4 (and IPv4-mapped) peers only */
};

struct acl_list {
	unsigned n;
	struct acl_rule v[ACL_MAX];
};

/* "192.0.2.0/24", "192.0.2.7", "2001:db8::/32", "[2001:db8::1]". Host bits set beyond the
 * prefix are refused (a typo more often than a wish). 0, or -1 with the reason in why. */
int acl_parse(const char *text, struct acl_rule *r, char *why, size_t whylen);
/* Parses and appends; an empty text empties the list. 0, or -1 with the reason. */
int acl_add(struct acl_list *l, const char *text, char *why, size_t whylen);
/* The rule as acl_parse reads it back: "192.0.2.0/24", "2001:db8::/32". */
void acl_format(const struct acl_rule *r, char *out, size_t outlen);
/* The longest prefix of l covering key (as net_addr_key makes it), or -1. */
int acl_match(const struct acl_list *l, const uint8_t key[16]);
/* 1 when a peer with this key may be served, 0 when it is refused. */
int acl_permits(const struct acl_list *allow, const struct acl_list *deny, const uint8_t key[16]);

static inline int acl_active(const struct acl_list *allow, const struct acl_list *deny)
{
	return allow->n > 0 || deny->n > 0;
}

#ifdef __cplusplus
}
#endif
#endif
