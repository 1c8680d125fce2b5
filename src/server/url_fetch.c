/*
 * url_fetch.c: the SSRF-safe URL fetch of `cutout s` (see url_fetch.h).
 *
 * DESIGN
 * One hop = parse (CURLU) -> policy on scheme, userinfo, port, host ->
 * getaddrinfo -> policy on EVERY address (one bad address rejects the
 * host, as rembg does) -> one libcurl GET pinned to the vetted addresses.
 * The pin is double: CURLOPT_RESOLVE seeds libcurl's DNS cache with the
 * vetted addresses, so it never resolves the name again, and the
 * CURLOPT_OPENSOCKETFUNCTION callback refuses any socket address that is
 * not one of them (the guard that holds even if libcurl looked a name up
 * another way, or for an IP literal, which it never resolves).
 * libcurl never follows redirects (FOLLOWLOCATION off, protocols limited
 * to http/https anyway); the header callback notes the status line and
 * Location and, at the end of the headers, stops the transfer of any
 * response whose body we do not want (3xx, non-2xx, or a Content-Length
 * over the cap).  The Location is resolved against the current URL with
 * CURLU (relative, scheme-relative and absolute forms) and the next hop
 * starts over from the policy checks.  The timeout is one deadline for
 * all hops; getaddrinfo cannot be interrupted, so a slow resolver can
 * overrun it by its own timeout (resolv.conf), after which we give up.
 * Proxies: CURLOPT_PROXY "" (and NOPROXY "*") so that http_proxy and
 * friends from the environment are ignored: a proxy would connect to
 * addresses we never vetted.
 */
#include "url_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define DEFAULT_MAX_BYTES ((size_t)50 << 20)
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_MAX_REDIRECTS 5
#define MAX_URL_LEN 8192
#define MAX_PINNED 16        /* addresses handed to libcurl per hop */
#define FIRST_CHUNK (64 << 10)

void url_fetch_default_opts(url_fetch_opts *o)
{
  memset(o, 0, sizeof *o);
  o->max_bytes = DEFAULT_MAX_BYTES;
  o->timeout_ms = DEFAULT_TIMEOUT_MS;
  o->max_redirects = DEFAULT_MAX_REDIRECTS;
}

const char *url_fetch_status_str(url_fetch_status s)
{
  switch (s) {
  case URL_FETCH_OK: return "ok";
  case URL_FETCH_EBADURL: return "bad url";
  case URL_FETCH_EFORBIDDEN: return "forbidden";
  case URL_FETCH_ETOOBIG: return "too big";
  case URL_FETCH_EREMOTE: return "remote error";
  case URL_FETCH_ETIMEOUT: return "timeout";
  case URL_FETCH_ENETWORK: return "network error";
  case URL_FETCH_ENOMEM: return "out of memory";
  case URL_FETCH_EINVAL: return "bad options";
  }
  return "unknown";
}

static url_fetch_status fail(char *err, size_t errlen, url_fetch_status st,
                             const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static url_fetch_status fail(char *err, size_t errlen, url_fetch_status st,
                             const char *fmt, ...)
{
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return st;
}

/* ------------------------------------------------------------------------
 * Address policy
 * ---------------------------------------------------------------------- */

/* An address: family AF_INET (a[0..3]) or AF_INET6 (a[0..15]). */
struct addr {
  int fam;
  unsigned char a[16];
};

static int prefix_match(const unsigned char *x, const unsigned char *net,
                        int bits)
{
  int whole = bits / 8, rest = bits % 8;
  if (memcmp(x, net, (size_t)whole) != 0) return 0;
  if (!rest) return 1;
  unsigned char m = (unsigned char)(0xff << (8 - rest));
  return (x[whole] & m) == (net[whole] & m);
}

/* "a.b.c.d[/n]" or "v6[/n]" into *net and *bits; 0 if it parses. */
static int parse_cidr(const char *s, struct addr *net, int *bits)
{
  char buf[INET6_ADDRSTRLEN + 8];
  const char *slash = strchr(s, '/');
  size_t n = slash ? (size_t)(slash - s) : strlen(s);
  if (n == 0 || n >= INET6_ADDRSTRLEN) return -1;
  memcpy(buf, s, n);
  buf[n] = 0;
  memset(net, 0, sizeof *net);
  if (inet_pton(AF_INET, buf, net->a) == 1) net->fam = AF_INET;
  else if (inet_pton(AF_INET6, buf, net->a) == 1) net->fam = AF_INET6;
  else return -1;
  int max = net->fam == AF_INET ? 32 : 128;
  if (!slash) {
    *bits = max;
    return 0;
  }
  char *end;
  errno = 0;
  long b = strtol(slash + 1, &end, 10);
  if (errno || end == slash + 1 || *end || b < 0 || b > max) return -1;
  *bits = (int)b;
  return 0;
}

static url_fetch_status check_cidrs(const url_fetch_opts *o, char *err,
                                    size_t errlen)
{
  for (size_t i = 0; i < o->n_allow_cidrs; i++) {
    struct addr net;
    int bits;
    const char *c = o->allow_cidrs ? o->allow_cidrs[i] : NULL;
    if (!c || parse_cidr(c, &net, &bits) != 0)
      return fail(err, errlen, URL_FETCH_EINVAL,
                  "bad --allow-cidr \"%s\" (want ADDRESS[/PREFIX])",
                  c ? c : "(null)");
  }
  return URL_FETCH_OK;
}

url_fetch_status url_fetch_opts_check(const url_fetch_opts *o, char *err,
                                      size_t errlen)
{
  if (!o) return URL_FETCH_OK;
  if (o->n_allow_hosts && !o->allow_hosts)
    return fail(err, errlen, URL_FETCH_EINVAL, "allow_hosts is NULL");
  for (size_t i = 0; i < o->n_allow_hosts; i++)
    if (!o->allow_hosts[i] || !o->allow_hosts[i][0])
      return fail(err, errlen, URL_FETCH_EINVAL, "empty --allow-host");
  return check_cidrs(o, err, errlen);
}

/* Is a inside one of the --allow-cidr ranges?  (They parsed already.) */
static int allowed_by_cidr(const url_fetch_opts *o, const struct addr *a)
{
  for (size_t i = 0; i < o->n_allow_cidrs; i++) {
    struct addr net;
    int bits;
    if (parse_cidr(o->allow_cidrs[i], &net, &bits) != 0) continue;
    if (net.fam == a->fam && prefix_match(a->a, net.a, bits)) return 1;
  }
  return 0;
}

struct block {
  unsigned char net[16];
  int bits;
  const char *why;
};

/* IANA special-purpose IPv4 blocks that are not globally reachable, plus
 * multicast and the reserved 240/4 (which holds the broadcast address). */
static const struct block v4_blocked[] = {
  {{0, 0, 0, 0}, 8, "\"this network\" (0.0.0.0/8)"},
  {{10, 0, 0, 0}, 8, "private (10.0.0.0/8)"},
  {{100, 64, 0, 0}, 10, "shared address space / CGNAT (100.64.0.0/10)"},
  {{127, 0, 0, 0}, 8, "loopback (127.0.0.0/8)"},
  {{169, 254, 0, 0}, 16, "link-local (169.254.0.0/16)"},
  {{172, 16, 0, 0}, 12, "private (172.16.0.0/12)"},
  {{192, 0, 0, 0}, 24, "IETF protocol assignments (192.0.0.0/24)"},
  {{192, 0, 2, 0}, 24, "documentation (192.0.2.0/24)"},
  {{192, 88, 99, 0}, 24, "6to4 relay anycast (192.88.99.0/24)"},
  {{192, 168, 0, 0}, 16, "private (192.168.0.0/16)"},
  {{198, 18, 0, 0}, 15, "benchmarking (198.18.0.0/15)"},
  {{198, 51, 100, 0}, 24, "documentation (198.51.100.0/24)"},
  {{203, 0, 113, 0}, 24, "documentation (203.0.113.0/24)"},
  {{224, 0, 0, 0}, 4, "multicast (224.0.0.0/4)"},
  {{240, 0, 0, 0}, 4, "reserved or broadcast (240.0.0.0/4)"},
};

/* IPv6: only global unicast 2000::/3 can pass, minus these blocks; the
 * forms that embed an IPv4 address are judged by that address first. */
static const struct block v6_blocked[] = {
  {{0}, 128, "unspecified (::)"},
  {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback (::1)"},
  {{0}, 96, "IPv4-compatible, deprecated (::/96)"},
  {{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96,
   "IPv4-translated (::ffff:0:0:0/96)"},
  {{0, 0x64, 0xff, 0x9b, 0, 1}, 48, "local-use NAT64 (64:ff9b:1::/48)"},
  {{0x01, 0x00}, 64, "discard-only (100::/64)"},
  {{0xfc}, 7, "unique local (fc00::/7)"},
  {{0xfe, 0x80}, 10, "link-local (fe80::/10)"},
  {{0xfe, 0xc0}, 10, "site-local, deprecated (fec0::/10)"},
  {{0xff}, 8, "multicast (ff00::/8)"},
  {{0x20, 0x01, 0x00, 0x00}, 23,
   "IETF protocol assignments: Teredo, benchmarking, ORCHID (2001::/23)"},
  {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation (2001:db8::/32)"},
  {{0x3f, 0xff}, 20, "documentation (3fff::/20)"},
};

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0xff, 0xff};
static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
static const unsigned char global6[1] = {0x20};

static void addr_str(const struct addr *a, char *out, size_t cap)
{
  if (!inet_ntop(a->fam, a->a, out, (socklen_t)cap)) snprintf(out, cap, "?");
}

static url_fetch_status check_v4(const url_fetch_opts *o,
                                 const struct addr *a, const char *shown,
                                 char *err, size_t errlen)
{
  if (allowed_by_cidr(o, a)) return URL_FETCH_OK;
  for (size_t i = 0; i < sizeof v4_blocked / sizeof *v4_blocked; i++)
    if (prefix_match(a->a, v4_blocked[i].net, v4_blocked[i].bits))
      return fail(err, errlen, URL_FETCH_EFORBIDDEN,
                  "address %s is %s", shown, v4_blocked[i].why);
  return URL_FETCH_OK;
}

static url_fetch_status check_addr(const url_fetch_opts *o,
                                   const struct addr *a, char *err,
                                   size_t errlen)
{
  char shown[INET6_ADDRSTRLEN];
  addr_str(a, shown, sizeof shown);
  if (a->fam == AF_INET) return check_v4(o, a, shown, err, errlen);
  if (allowed_by_cidr(o, a)) return URL_FETCH_OK;

  /* ::ffff:a.b.c.d and 64:ff9b::a.b.c.d reach a.b.c.d; 2002:AABB:CCDD::/48
   * (6to4) routes to a.b.c.d's network.  Judge that IPv4 address. */
  struct addr v4 = {AF_INET, {0}};
  int embeds = 0;
  if (memcmp(a->a, v4_mapped, 12) == 0 || memcmp(a->a, nat64, 12) == 0) {
    memcpy(v4.a, a->a + 12, 4);
    embeds = 1;
  } else if (a->a[0] == 0x20 && a->a[1] == 0x02) {
    memcpy(v4.a, a->a + 2, 4);
    embeds = 1;
  }
  if (embeds) {
    url_fetch_status st = check_v4(o, &v4, shown, err, errlen);
    if (st) return st;
    if (a->a[0] != 0x20) return URL_FETCH_OK; /* mapped / NAT64 of public */
  }
  for (size_t i = 0; i < sizeof v6_blocked / sizeof *v6_blocked; i++)
    if (prefix_match(a->a, v6_blocked[i].net, v6_blocked[i].bits))
      return fail(err, errlen, URL_FETCH_EFORBIDDEN,
                  "address %s is %s", shown, v6_blocked[i].why);
  if (!prefix_match(a->a, global6, 3))
    return fail(err, errlen, URL_FETCH_EFORBIDDEN,
                "address %s is not global unicast (outside 2000::/3)",
                shown);
  return URL_FETCH_OK;
}

url_fetch_status url_fetch_check_address(const char *ip,
                                         const url_fetch_opts *o, char *err,
                                         size_t errlen)
{
  url_fetch_opts d;
  if (!o) {
    url_fetch_default_opts(&d);
    o = &d;
  }
  url_fetch_status st = url_fetch_opts_check(o, err, errlen);
  if (st) return st;
  struct addr a = {0, {0}};
  if (ip && inet_pton(AF_INET, ip, a.a) == 1) a.fam = AF_INET;
  else if (ip && inet_pton(AF_INET6, ip, a.a) == 1) a.fam = AF_INET6;
  else
    return fail(err, errlen, URL_FETCH_EBADURL, "not a numeric address: %s",
                ip ? ip : "(null)");
  return check_addr(o, &a, err, errlen);
}

/* ------------------------------------------------------------------------
 * URL policy and resolution
 * ---------------------------------------------------------------------- */

/* curl_global_init is not thread-safe in every libcurl: run it once. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* What one hop connects to, after the checks. */
struct target {
  char url[MAX_URL_LEN + 1]; /* normalised by CURLU */
  char host[256];            /* as libcurl will use it; no [] for IPv6 */
  int literal;               /* host is a numeric address */
  long port;
  int n;                     /* vetted addresses */
  struct sockaddr_storage sa[MAX_PINNED];
  int refused;               /* the socket guard refused an address */
};

static int host_allowed(const url_fetch_opts *o, const char *host)
{
  size_t hl = strlen(host);
  if (hl && host[hl - 1] == '.') hl--;
  for (size_t i = 0; i < o->n_allow_hosts; i++) {
    const char *p = o->allow_hosts[i];
    size_t pl = strlen(p);
    if (pl && p[pl - 1] == '.') pl--;
    if (pl > 2 && p[0] == '*' && p[1] == '.') {
      /* "*.example.com": any name strictly below example.com */
      size_t sl = pl - 1; /* ".example.com" */
      if (hl > sl && strncasecmp(host + hl - sl, p + 1, sl) == 0) return 1;
    } else if (pl == hl && strncasecmp(host, p, hl) == 0) {
      return 1;
    }
  }
  return 0;
}

static url_fetch_status get_part(CURLU *u, CURLUPart part, unsigned flags,
                                 char **out)
{
  CURLUcode rc = curl_url_get(u, part, out, flags);
  if (rc == CURLUE_OUT_OF_MEMORY) return URL_FETCH_ENOMEM;
  if (rc != CURLUE_OK) *out = NULL;
  return URL_FETCH_OK;
}

/* The checks on the parsed URL u, then its resolution and the checks on
 * every address; fills *t. */
static url_fetch_status vet(CURLU *u, const url_fetch_opts *o,
                            struct target *t, char *err, size_t errlen)
{
  char *scheme = NULL, *user = NULL, *pass = NULL, *host = NULL;
  char *port = NULL, *zone = NULL, *full = NULL;
  url_fetch_status st;
  memset(t, 0, sizeof *t);
  if ((st = get_part(u, CURLUPART_SCHEME, 0, &scheme)) ||
      (st = get_part(u, CURLUPART_USER, 0, &user)) ||
      (st = get_part(u, CURLUPART_PASSWORD, 0, &pass)) ||
      (st = get_part(u, CURLUPART_HOST, 0, &host)) ||
      (st = get_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, &port)) ||
      (st = get_part(u, CURLUPART_ZONEID, 0, &zone)) ||
      (st = get_part(u, CURLUPART_URL, 0, &full))) {
    fail(err, errlen, st, "out of memory");
    goto out;
  }
  st = URL_FETCH_EBADURL;
  if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https"))) {
    fail(err, errlen, st, "only http and https URLs can be fetched (got %s)",
         scheme ? scheme : "no scheme");
    goto out;
  }
  /* http://trusted@evil/ and friends: nothing legitimate needs userinfo */
  if (user || pass) {
    fail(err, errlen, st, "URLs with user info (user@host) are refused");
    goto out;
  }
  if (zone) {
    fail(err, errlen, st, "IPv6 zone ids are refused");
    goto out;
  }
  if (!host || !host[0] || strcmp(host, "[]") == 0) {
    fail(err, errlen, st, "the URL has no host");
    goto out;
  }
  char *end = NULL;
  long pn = port ? strtol(port, &end, 10) : 0;
  if (!port || *end || pn < 1 || pn > 65535) {
    fail(err, errlen, st, "bad port %s", port ? port : "(none)");
    goto out;
  }
  if (!full || strlen(full) > MAX_URL_LEN) {
    fail(err, errlen, st, "URL longer than %d bytes", MAX_URL_LEN);
    goto out;
  }
  size_t hl = strlen(host);
  const char *h = host;
  if (host[0] == '[' && host[hl - 1] == ']') { /* IPv6 literal */
    h = host + 1;
    hl -= 2;
  }
  if (hl >= sizeof t->host) {
    fail(err, errlen, st, "host name too long");
    goto out;
  }
  for (size_t i = 0; i < hl; i++)
    if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f) {
      /* libcurl would punycode it and resolve a name we did not vet */
      fail(err, errlen, st, "non-ASCII host names must be given in "
           "punycode (xn--...)");
      goto out;
    }
  memcpy(t->host, h, hl);
  t->host[hl] = 0;
  snprintf(t->url, sizeof t->url, "%s", full);
  t->port = pn;

  st = URL_FETCH_EFORBIDDEN;
  if (o->n_allow_hosts && !host_allowed(o, t->host)) {
    fail(err, errlen, st, "host %s is not in the --allow-host list",
         t->host);
    goto out;
  }

  struct addrinfo hints, *res = NULL, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  unsigned char probe[16];
  t->literal = inet_pton(AF_INET, t->host, probe) == 1 ||
               inet_pton(AF_INET6, t->host, probe) == 1;
  int rc = getaddrinfo(t->host, port, &hints, &res);
  if (rc != 0) {
    st = rc == EAI_MEMORY ? URL_FETCH_ENOMEM : URL_FETCH_ENETWORK;
    fail(err, errlen, st, "cannot resolve %s: %s", t->host,
         gai_strerror(rc));
    goto out;
  }
  /* every address must pass, not only the one we would connect to */
  st = URL_FETCH_OK;
  for (ai = res; ai && !st; ai = ai->ai_next) {
    struct addr a = {ai->ai_family, {0}};
    if (ai->ai_family == AF_INET)
      memcpy(a.a, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
    else if (ai->ai_family == AF_INET6)
      memcpy(a.a, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
    else
      continue;
    st = check_addr(o, &a, err, errlen);
    if (!st && t->n < MAX_PINNED && ai->ai_addrlen <= sizeof t->sa[0])
      memcpy(&t->sa[t->n++], ai->ai_addr, ai->ai_addrlen);
  }
  freeaddrinfo(res);
  if (!st && t->n == 0)
    st = fail(err, errlen, URL_FETCH_ENETWORK, "%s has no IP address",
              t->host);
out:
  curl_free(scheme);
  curl_free(user);
  curl_free(pass);
  curl_free(host);
  curl_free(port);
  curl_free(zone);
  curl_free(full);
  return st;
}

/* "host:port:addr1,addr2,..." for CURLOPT_RESOLVE. */
static int resolve_entry(const struct target *t, char *out, size_t cap)
{
  size_t p = (size_t)snprintf(out, cap, "%s:%ld:", t->host, t->port);
  for (int i = 0; i < t->n && p < cap; i++) {
    char s[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = (const struct sockaddr *)&t->sa[i];
    const void *a = sa->sa_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!inet_ntop(sa->sa_family, a, s, sizeof s)) return -1;
    p += (size_t)snprintf(out + p, cap - p, sa->sa_family == AF_INET6
                                                 ? "%s[%s]" : "%s%s",
                          i ? "," : "", s);
  }
  return p < cap ? 0 : -1;
}

static int same_sockaddr(const struct sockaddr *x, const struct sockaddr *y)
{
  if (x->sa_family != y->sa_family) return 0;
  if (x->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)x, *b = (const void *)y;
    return a->sin_port == b->sin_port &&
           memcmp(&a->sin_addr, &b->sin_addr, 4) == 0;
  }
  if (x->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const void *)x, *b = (const void *)y;
    return a->sin6_port == b->sin6_port &&
           memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
  }
  return 0;
}

/* The last line of defence: libcurl may open a socket only to a vetted
 * address and port. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose,
                                 struct curl_sockaddr *ca)
{
  struct target *t = arg;
  if (purpose == CURLSOCKTYPE_IPCXN)
    for (int i = 0; i < t->n; i++)
      if (same_sockaddr(&ca->addr, (const struct sockaddr *)&t->sa[i]))
        return socket(ca->family, ca->socktype | SOCK_CLOEXEC, ca->protocol);
  t->refused = 1;
  return CURL_SOCKET_BAD;
}

/* ------------------------------------------------------------------------
 * One GET
 * ---------------------------------------------------------------------- */

enum stop { STOP_NONE, STOP_REDIRECT, STOP_STATUS, STOP_TOOBIG, STOP_NOMEM };

struct hop {
  long status;            /* of the current response */
  char *location;         /* its Location header (malloc) */
  long long clen;         /* its Content-Length, -1 if none */
  enum stop stop;         /* why a callback ended the transfer */
  unsigned char *buf;
  size_t len, cap, max;
};

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
  struct hop *h = arg;
  size_t len = size * n;
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    /* a new response (after a 1xx): forget the last one's headers */
    const char *sp = memchr(line, ' ', len);
    h->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    free(h->location);
    h->location = NULL;
    h->clen = -1;
    return len;
  }
  if (len >= 9 && strncasecmp(line, "location:", 9) == 0) {
    size_t a = 9, b = len;
    while (a < b && (line[a] == ' ' || line[a] == '\t')) a++;
    while (b > a && (line[b - 1] == '\r' || line[b - 1] == '\n' ||
                     line[b - 1] == ' ' || line[b - 1] == '\t'))
      b--;
    free(h->location);
    h->location = malloc(b - a + 1);
    if (!h->location) {
      h->stop = STOP_NOMEM;
      return 0;
    }
    memcpy(h->location, line + a, b - a);
    h->location[b - a] = 0;
    return len;
  }
  if (len >= 15 && strncasecmp(line, "content-length:", 15) == 0) {
    char tmp[32];
    size_t k = len - 15 < sizeof tmp - 1 ? len - 15 : sizeof tmp - 1;
    memcpy(tmp, line + 15, k);
    tmp[k] = 0;
    char *end;
    long long v = strtoll(tmp, &end, 10);
    h->clen = end != tmp && v >= 0 ? v : -1;
    return len;
  }
  if ((len == 2 && line[0] == '\r') || (len == 1 && line[0] == '\n')) {
    /* end of one response's headers: decide before any body byte */
    if (h->status >= 100 && h->status < 200) return len;
    if (h->status >= 300 && h->status < 400) h->stop = STOP_REDIRECT;
    else if (h->status < 200 || h->status >= 300) h->stop = STOP_STATUS;
    else if (h->clen >= 0 && (unsigned long long)h->clen > h->max)
      h->stop = STOP_TOOBIG;
    if (h->stop) return 0;
    if (h->clen > 0 && !h->buf) {
      /* one allocation for a body of announced size */
      h->buf = malloc((size_t)h->clen);
      if (!h->buf) {
        h->stop = STOP_NOMEM;
        return 0;
      }
      h->cap = (size_t)h->clen;
    }
  }
  return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
  struct hop *h = arg;
  size_t len = size * n;
  if (len > h->max - h->len) {
    h->stop = STOP_TOOBIG;
    return 0;
  }
  if (h->len + len > h->cap) {
    size_t cap = h->cap ? h->cap : FIRST_CHUNK;
    if (cap > h->max) cap = h->max;
    while (cap < h->len + len) cap = cap > h->max / 2 ? h->max : cap * 2;
    unsigned char *nb = realloc(h->buf, cap);
    if (!nb) {
      h->stop = STOP_NOMEM;
      return 0;
    }
    h->buf = nb;
    h->cap = cap;
  }
  memcpy(h->buf + h->len, data, len);
  h->len += len;
  return len;
}

static long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static url_fetch_status perform(struct target *t, struct hop *h,
                                long timeout_ms, char *err, size_t errlen)
{
  char entry[MAX_PINNED * (INET6_ADDRSTRLEN + 3) + 300];
  char ebuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *resolve = NULL;
  url_fetch_status st = URL_FETCH_OK;
  CURL *c = curl_easy_init();
  if (!c) return fail(err, errlen, URL_FETCH_ENOMEM, "curl_easy_init failed");
  if (!t->literal) {
    /* libcurl does not resolve IP literals; names get the pinned set */
    if (resolve_entry(t, entry, sizeof entry) != 0 ||
        !(resolve = curl_slist_append(NULL, entry))) {
      curl_easy_cleanup(c);
      return fail(err, errlen, URL_FETCH_ENOMEM, "out of memory");
    }
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
  }
  curl_easy_setopt(c, CURLOPT_URL, t->url);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "cutout-server/1");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
  CURLcode rc = curl_easy_perform(c);

  if (h->stop == STOP_NOMEM) {
    st = fail(err, errlen, URL_FETCH_ENOMEM, "out of memory");
  } else if (h->stop == STOP_TOOBIG || rc == CURLE_FILESIZE_EXCEEDED) {
    st = fail(err, errlen, URL_FETCH_ETOOBIG,
              "the body is larger than %zu bytes", h->max);
  } else if (h->stop == STOP_REDIRECT || h->stop == STOP_STATUS) {
    st = URL_FETCH_OK; /* the caller looks at h->status */
  } else if (rc == CURLE_OK) {
    if (h->status < 200 || h->status >= 300) /* HTTP/0.9 or odd */
      h->stop = STOP_STATUS;
  } else if (t->refused) {
    st = fail(err, errlen, URL_FETCH_EFORBIDDEN,
              "connection to an address that was not vetted refused");
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    st = fail(err, errlen, URL_FETCH_ETIMEOUT, "timed out after %ld ms",
              timeout_ms);
  } else if (rc == CURLE_OUT_OF_MEMORY) {
    st = fail(err, errlen, URL_FETCH_ENOMEM, "out of memory");
  } else {
    st = fail(err, errlen, URL_FETCH_ENETWORK, "%s: %s", t->host,
              ebuf[0] ? ebuf : curl_easy_strerror(rc));
  }
  curl_easy_cleanup(c);
  curl_slist_free_all(resolve);
  return st;
}

/* ------------------------------------------------------------------------
 * The fetch: hops until a 2xx, an error, or too many redirects
 * ---------------------------------------------------------------------- */

url_fetch_status url_fetch(const char *url, const url_fetch_opts *o,
                           unsigned char **data, size_t *len,
                           long *http_status, char *err, size_t errlen)
{
  url_fetch_opts d;
  url_fetch_default_opts(&d);
  if (o) {
    d.allow_hosts = o->allow_hosts;
    d.n_allow_hosts = o->n_allow_hosts;
    d.allow_cidrs = o->allow_cidrs;
    d.n_allow_cidrs = o->n_allow_cidrs;
    if (o->max_bytes) d.max_bytes = o->max_bytes;
    if (o->timeout_ms > 0) d.timeout_ms = o->timeout_ms;
    if (o->max_redirects >= 0) d.max_redirects = o->max_redirects;
  }
  *data = NULL;
  *len = 0;
  if (http_status) *http_status = 0;
  if (err && errlen) err[0] = 0;
  url_fetch_status st = url_fetch_opts_check(&d, err, errlen);
  if (st) return st;
  if (!url || !url[0] || strlen(url) > MAX_URL_LEN)
    return fail(err, errlen, URL_FETCH_EBADURL, "empty or over-long URL");
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return fail(err, errlen, URL_FETCH_ENETWORK, "curl_global_init: %s",
                curl_easy_strerror(curl_init_rc));

  struct target *t = malloc(sizeof *t);
  CURLU *u = curl_url();
  struct hop h;
  memset(&h, 0, sizeof h);
  if (!t || !u) {
    st = fail(err, errlen, URL_FETCH_ENOMEM, "out of memory");
    goto out;
  }
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc) {
    st = fail(err, errlen, uc == CURLUE_OUT_OF_MEMORY ? URL_FETCH_ENOMEM
                                                     : URL_FETCH_EBADURL,
              "bad URL: %s", curl_url_strerror(uc));
    goto out;
  }
  long deadline = now_ms() + d.timeout_ms;
  for (int hops = 0;; hops++) {
    st = vet(u, &d, t, err, errlen);
    if (st) goto out;
    long left = deadline - now_ms();
    if (left <= 0) {
      st = fail(err, errlen, URL_FETCH_ETIMEOUT, "timed out after %ld ms",
                d.timeout_ms);
      goto out;
    }
    free(h.buf);
    free(h.location);
    memset(&h, 0, sizeof h);
    h.clen = -1;
    h.max = d.max_bytes;
    st = perform(t, &h, left, err, errlen);
    if (http_status) *http_status = h.status;
    if (st) goto out;
    if (h.stop == STOP_NONE) break;
    if (h.stop == STOP_STATUS) {
      st = fail(err, errlen, URL_FETCH_EREMOTE, "%s answered HTTP %ld",
                t->host, h.status);
      goto out;
    }
    /* a redirect */
    if (!h.location || !h.location[0]) {
      st = fail(err, errlen, URL_FETCH_EREMOTE,
                "HTTP %ld redirect without a Location", h.status);
      goto out;
    }
    if (h.status != 301 && h.status != 302 && h.status != 303 &&
        h.status != 307 && h.status != 308) {
      st = fail(err, errlen, URL_FETCH_EREMOTE, "%s answered HTTP %ld",
                t->host, h.status);
      goto out;
    }
    if (hops >= d.max_redirects) {
      st = fail(err, errlen, URL_FETCH_EREMOTE,
                "too many redirects (more than %d)", d.max_redirects);
      goto out;
    }
    if (strlen(h.location) > MAX_URL_LEN) {
      st = fail(err, errlen, URL_FETCH_EBADURL, "over-long redirect");
      goto out;
    }
    /* relative to the current URL; u keeps the old one if this fails */
    uc = curl_url_set(u, CURLUPART_URL, h.location, 0);
    if (uc) {
      st = fail(err, errlen, uc == CURLUE_OUT_OF_MEMORY ? URL_FETCH_ENOMEM
                                                       : URL_FETCH_EBADURL,
                "bad redirect Location \"%.200s\": %s", h.location,
                curl_url_strerror(uc));
      goto out;
    }
  }
  /* a 2xx: hand the body over (an empty one too, as a valid pointer) */
  if (!h.buf) h.buf = malloc(1);
  if (!h.buf) {
    st = fail(err, errlen, URL_FETCH_ENOMEM, "out of memory");
    goto out;
  }
  *data = h.buf;
  *len = h.len;
  h.buf = NULL;
out:
  free(h.buf);
  free(h.location);
  free(t);
  curl_url_cleanup(u);
  return st;
}
