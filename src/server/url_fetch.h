/*
 * url_fetch.h: the SSRF-safe HTTP(S) fetch behind `cutout s`'s
 * GET /api/remove?url= (issue #5, item 7).
 *
 * Only http and https; every address a host name resolves to is checked
 * against a block list (private, loopback, link-local, CGNAT, reserved,
 * documentation, multicast, unspecified, broadcast, and the IPv4-mapped,
 * NAT64 and 6to4 forms of those), and the connection is pinned to the
 * vetted addresses, so a second DNS answer (rebinding) cannot move it.
 * Redirects are followed here, not by libcurl: each hop is re-parsed,
 * re-resolved and re-checked.  No proxy is ever used, not even one from
 * the environment: a proxy would connect on our behalf to addresses we
 * never vetted.
 *
 * Thread-safety: url_fetch() may be called from any number of threads at
 * once (one libcurl easy handle per call; curl_global_init runs once).
 */
#ifndef CUTOUT_URL_FETCH_H
#define CUTOUT_URL_FETCH_H

#include <stddef.h>

typedef struct url_fetch_opts {
  size_t max_bytes;            /* body cap, default 50 MiB */
  long timeout_ms;             /* whole transfer, default 30 s */
  int max_redirects;           /* default 5 */
  const char *const *allow_hosts; size_t n_allow_hosts; /* --allow-host: if n>0 only these host names may be fetched */
  const char *const *allow_cidrs; size_t n_allow_cidrs; /* --allow-cidr: explicit opt-in for otherwise-blocked ranges */
} url_fetch_opts;

typedef enum url_fetch_status { URL_FETCH_OK = 0, URL_FETCH_EBADURL, URL_FETCH_EFORBIDDEN, URL_FETCH_ETOOBIG,
  URL_FETCH_EREMOTE, URL_FETCH_ETIMEOUT, URL_FETCH_ENETWORK, URL_FETCH_ENOMEM,
  URL_FETCH_EINVAL             /* the options themselves are bad (an allow_cidrs entry that does not parse) */
} url_fetch_status;

/* Fills *o with the defaults above (no allow lists).
 * In a filled struct, max_bytes 0 and timeout_ms <= 0 also mean the
 * default; max_redirects < 0 means the default, 0 means follow none. */
void url_fetch_default_opts(url_fetch_opts *o);

/* GET url.  On OK, *data (free()) and *len hold the body; else err says why. http_status: the final remote status or 0.
 *
 * o may be NULL (defaults).  On failure *data is NULL and *len 0.
 * http_status (may be NULL) is the status of the last response received:
 * the 404 of EREMOTE, the 3xx of a redirect that was refused, 0 when no
 * response came.  err (may be NULL) gets a one-line reason.
 * allow_hosts entries match the URL's host case-insensitively, exactly or,
 * written "*.example.com", any name below example.com; they restrict, they
 * never unblock an address.  allow_cidrs entries ("127.0.0.2/32",
 * "fd00::/8", or a bare address) unblock addresses inside them.
 * Statuses: EBADURL (not http/https, malformed, userinfo, bad port, empty
 * host, bad Location), EFORBIDDEN (host not allowed, or an address
 * blocked), ETOOBIG (Content-Length or streamed body over max_bytes),
 * EREMOTE (non-2xx, 3xx without Location, more than max_redirects),
 * ETIMEOUT (the whole fetch, all hops, over timeout_ms), ENETWORK (DNS
 * failure, refused connection, TLS error...), ENOMEM, EINVAL (bad opts). */
url_fetch_status url_fetch(const char *url, const url_fetch_opts *o, unsigned char **data, size_t *len,
                           long *http_status, char *err, size_t errlen);

/* ---- additions (after the agreed interface) ---- */

/* Checks the options once (a server does it at start-up): EINVAL with a
 * reason if an allow_cidrs entry does not parse, else OK. */
url_fetch_status url_fetch_opts_check(const url_fetch_opts *o, char *err, size_t errlen);

/* The policy applied to each resolved address, for one numeric address
 * ("10.1.2.3", "::ffff:127.0.0.1"): OK if it may be fetched, EFORBIDDEN
 * with the reason if not, EBADURL if ip is not a numeric address. */
url_fetch_status url_fetch_check_address(const char *ip, const url_fetch_opts *o, char *err, size_t errlen);

/* A constant name for a status ("forbidden", "too big", ...). */
const char *url_fetch_status_str(url_fetch_status s);

#endif
