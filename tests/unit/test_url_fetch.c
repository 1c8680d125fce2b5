/*
 * test_url_fetch.c: the SSRF-safe URL fetch of `cutout s` (issue #5 item 7)
 * against real HTTP servers on loopback (url_fetch_server.py).
 *
 * The test server listens on 127.0.0.2 and the fetches allow exactly
 * 127.0.0.2/32 (and 127.0.0.3/32 where a second host is needed), so every
 * other loopback address stays blocked.  "Trap" servers listen on
 * 127.0.0.1 and ::1 and count their requests: a rejected fetch must not
 * only fail, it must never reach them.
 */
#include "url_fetch.h"

#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static int port_main, port_three, port_trap, port_trap6;
static pid_t server_pid = -1;
static int server_stdin = -1;

static const char *const allow_main[] = {"127.0.0.2/32"};
static const char *const allow_two[] = {"127.0.0.2/32", "127.0.0.3/32"};

/* Options that allow the test server and nothing else; short timeout. */
static url_fetch_opts opts_main(void)
{
  url_fetch_opts o;
  url_fetch_default_opts(&o);
  o.allow_cidrs = allow_main;
  o.n_allow_cidrs = 1;
  o.timeout_ms = 20000;
  return o;
}

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf[k], sizeof buf[k], f, ap);
  va_end(ap);
  return buf[k];
}

/* One fetch; the body is kept in *body (free()) when asked for. */
struct result {
  url_fetch_status st;
  long http;
  size_t len;
  unsigned char *data;
  char err[256];
};

static struct result fetch(const char *url, const url_fetch_opts *o)
{
  struct result r;
  memset(&r, 0, sizeof r);
  r.data = (unsigned char *)"not touched";
  r.len = 12345;
  r.st = url_fetch(url, o, &r.data, &r.len, &r.http, r.err, sizeof r.err);
  if (r.st) {
    /* outputs on failure: no body, an explanation */
    assert_null(r.data);
    assert_int_equal(r.len, 0);
    assert_true(r.err[0] != 0);
  } else {
    assert_non_null(r.data);
  }
  return r;
}

#define expect(url, o, status)                                              \
  do {                                                                      \
    struct result r_ = fetch((url), (o));                                   \
    if (r_.st != (status))                                                  \
      fail_msg("%s: got %s (%s), want %s", (url), url_fetch_status_str(r_.st), \
               r_.err, url_fetch_status_str(status));                      \
    free(r_.data);                                                          \
  } while (0)

/* Requests each listener has answered: main, three, trap, trap6. */
static void hits(int h[4])
{
  url_fetch_opts o = opts_main();
  struct result r = fetch(fmt("http://127.0.0.2:%d/hits", port_main), &o);
  assert_int_equal(r.st, URL_FETCH_OK);
  char s[64];
  snprintf(s, sizeof s, "%.*s", (int)r.len, (const char *)r.data);
  free(r.data);
  assert_int_equal(sscanf(s, "%d %d %d %d", &h[0], &h[1], &h[2], &h[3]), 4);
}

static void assert_traps_untouched(void)
{
  int h[4];
  hits(h);
  assert_int_equal(h[2], 0);
  assert_int_equal(h[3], 0);
}

/* ------------------------------------------------------------------------ */

static void test_fetch_ok(void **state)
{
  url_fetch_opts o = opts_main();
  struct result r = fetch(fmt("http://127.0.0.2:%d/ok", port_main), &o);
  assert_int_equal(r.st, URL_FETCH_OK);
  assert_int_equal(r.http, 200);
  assert_int_equal(r.len, 3000);
  for (size_t i = 0; i < r.len; i++)
    assert_int_equal(r.data[i], (i * 7) % 251);
  free(r.data);

  /* scheme case does not matter; an empty 2xx body is a valid result */
  expect(fmt("HTTP://127.0.0.2:%d/ok", port_main), &o, URL_FETCH_OK);
  r = fetch(fmt("http://127.0.0.2:%d/status/204", port_main), &o);
  assert_int_equal(r.st, URL_FETCH_OK);
  assert_int_equal(r.http, 204);
  assert_int_equal(r.len, 0);
  free(r.data);

  /* NULL status and error outputs are allowed */
  unsigned char *d;
  size_t n;
  assert_int_equal(url_fetch(fmt("http://127.0.0.2:%d/ok", port_main), &o, &d,
                             &n, NULL, NULL, 0),
                   URL_FETCH_OK);
  assert_int_equal(n, 3000);
  free(d);
}

/* Without --allow-cidr the test server itself (loopback) is refused, before
 * any connection. */
static void test_loopback_blocked_by_default(void **state)
{
  int before[4], after[4];
  hits(before);
  struct result r = fetch(fmt("http://127.0.0.2:%d/ok", port_main), NULL);
  assert_int_equal(r.st, URL_FETCH_EFORBIDDEN);
  assert_non_null(strstr(r.err, "loopback"));
  assert_int_equal(r.http, 0);
  hits(after);
  assert_int_equal(after[0], before[0]); /* /hits itself is not counted */
}

static void test_redirect_to_blocked(void **state)
{
  url_fetch_opts o = opts_main();
  const char *targets[] = {
      fmt("http://127.0.0.1:%d/", port_trap),
      "http://169.254.169.254/latest/meta-data/",
      fmt("http://localhost:%d/", port_trap),
      fmt("http://[::1]:%d/", port_trap6 ? port_trap6 : 80),
      fmt("http://[::ffff:127.0.0.1]:%d/", port_trap),
      "http://10.0.0.1/", "http://192.168.1.1/", "http://[fd00::1]/",
      "http://0.0.0.0/", "http://100.64.0.1/", "http://224.0.0.1/",
  };
  for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
    char *q = malloc(strlen(targets[i]) * 3 + 1), *p = q;
    for (const char *s = targets[i]; *s; s++)
      p += sprintf(p, (*s == ':' || *s == '/' || *s == '[' || *s == ']')
                          ? "%%%02X" : "%c",
                   (unsigned char)*s);
    for (int code = 301; code <= 308; code += (code == 303 ? 4 : 1)) {
      struct result r = fetch(
          fmt("http://127.0.0.2:%d/redir?code=%d&to=%s", port_main, code, q), &o);
      if (r.st != URL_FETCH_EFORBIDDEN)
        fail_msg("redirect %d to %s: %s (%s)", code, targets[i],
                 url_fetch_status_str(r.st), r.err);
      assert_int_equal(r.http, code); /* the refused redirect's own status */
    }
    free(q);
  }
  /* the metadata address is named for what it is */
  struct result r = fetch(fmt("http://127.0.0.2:%d/redir?to=http://169.254.169.254/",
                              port_main), &o);
  assert_int_equal(r.st, URL_FETCH_EFORBIDDEN);
  assert_non_null(strstr(r.err, "link-local"));
  assert_traps_untouched();
}

static void test_direct_blocked(void **state)
{
  url_fetch_opts o = opts_main();
  const char *urls[] = {
      fmt("http://127.0.0.1:%d/", port_trap),
      fmt("http://localhost:%d/", port_trap),
      fmt("http://LocalHost.:%d/", port_trap),
      fmt("http://[::1]:%d/", port_trap6 ? port_trap6 : 80),
      fmt("http://[::ffff:127.0.0.1]:%d/", port_trap),
      fmt("http://[::ffff:7f00:1]:%d/", port_trap),
      fmt("http://[0:0:0:0:0:ffff:127.0.0.1]:%d/", port_trap),
      fmt("http://[64:ff9b::127.0.0.1]:%d/", port_trap),
      fmt("http://[::127.0.0.1]:%d/", port_trap),
      fmt("http://[::]:%d/", port_trap),
      /* other spellings of 127.0.0.1 */
      fmt("http://2130706433:%d/", port_trap),
      fmt("http://0x7f.1:%d/", port_trap),
      fmt("http://0x7f000001:%d/", port_trap),
      fmt("http://0177.0.0.1:%d/", port_trap),
      fmt("http://127.1:%d/", port_trap),
      fmt("http://127.000.000.001:%d/", port_trap),
      fmt("http://0x7f.0x0.0x0.0x1:%d/", port_trap),
      fmt("http://%%31%%32%%37.0.0.1:%d/", port_trap), /* percent-encoded */
      fmt("https://127.0.0.1:%d/", port_trap),
      fmt("http://0:%d/", port_trap),
      "http://169.254.169.254/", "http://[fe80::1]/", "http://255.255.255.255/",
      "http://198.18.0.1/", "http://192.0.0.8/", "http://[ff02::1]/",
  };
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++)
    expect(urls[i], &o, URL_FETCH_EFORBIDDEN);
  assert_traps_untouched();
  /* the same spellings of the allowed 127.0.0.2 are the same address */
  expect(fmt("http://2130706434:%d/ok", port_main), &o, URL_FETCH_OK);
  expect(fmt("http://0x7f.2:%d/ok", port_main), &o, URL_FETCH_OK);
  expect(fmt("http://[::ffff:127.0.0.2]:%d/ok", port_main), &o, URL_FETCH_OK);
}

static void test_schemes_and_bad_urls(void **state)
{
  url_fetch_opts o = opts_main();
  char *longurl = malloc(9000);
  snprintf(longurl, 9000, "http://127.0.0.2:%d/", port_main);
  memset(longurl + strlen(longurl), 'a', 8500);
  longurl[8999] = 0;
  const char *urls[] = {
      "", "file:///etc/passwd", fmt("gopher://127.0.0.2:%d/", port_main),
      fmt("ftp://127.0.0.2:%d/", port_main), "dict://127.0.0.2:11211/",
      "ldap://127.0.0.2/", "javascript:alert(1)", "data:text/plain,hi",
      fmt("//127.0.0.2:%d/ok", port_main), fmt("127.0.0.2:%d/ok", port_main),
      "http://", "http://:80/", "http://[]/", "http://?x", "http://#x",
      fmt("http://user@127.0.0.2:%d/ok", port_main),
      fmt("http://u:p@127.0.0.2:%d/ok", port_main),
      /* the classic: looks like 127.0.0.2, is 127.0.0.1 */
      fmt("http://127.0.0.2:%d@127.0.0.1:%d/", port_main, port_trap),
      "http://127.0.0.2:0/ok", "http://127.0.0.2:65536/ok",
      "http://127.0.0.2:-1/ok", "http://127.0.0.2:8x/ok",
      fmt("http://127.0.0.2:%d:%d/ok", port_main, port_main),
      fmt("http://x\\@127.0.0.1:%d/", port_trap),
      "http://127\xe3\x80\x82" "0\xe3\x80\x82" "0\xe3\x80\x82" "1/", /* ideographic dots */
      "http://exa mple.com/", "http://[fe80::1%25lo]/", "http://b\xc3\xbc" "cher.example/",
      longurl,
  };
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++)
    expect(urls[i], &o, URL_FETCH_EBADURL);
  free(longurl);
  /* a redirect to another scheme is refused the same way */
  expect(fmt("http://127.0.0.2:%d/redir?to=file:///etc/passwd", port_main), &o,
         URL_FETCH_EBADURL);
  expect(fmt("http://127.0.0.2:%d/redir?to=gopher://127.0.0.2:%d/", port_main,
             port_main), &o, URL_FETCH_EBADURL);
  expect(fmt("http://127.0.0.2:%d/redir?to=ftp://127.0.0.2/", port_main), &o,
         URL_FETCH_EBADURL);
  assert_traps_untouched();
}

static void test_redirect_limit(void **state)
{
  url_fetch_opts o = opts_main();
  /* /chain/N redirects N times, through all four Location forms */
  struct result r = fetch(fmt("http://127.0.0.2:%d/chain/5", port_main), &o);
  assert_int_equal(r.st, URL_FETCH_OK);
  assert_int_equal(r.len, 3);
  assert_memory_equal(r.data, "end", 3);
  free(r.data);
  r = fetch(fmt("http://127.0.0.2:%d/chain/6", port_main), &o);
  assert_int_equal(r.st, URL_FETCH_EREMOTE);
  assert_int_equal(r.http, 302);
  assert_non_null(strstr(r.err, "too many redirects"));

  o.max_redirects = 0;
  expect(fmt("http://127.0.0.2:%d/chain/0", port_main), &o, URL_FETCH_OK);
  expect(fmt("http://127.0.0.2:%d/chain/1", port_main), &o, URL_FETCH_EREMOTE);
  o.max_redirects = 2;
  expect(fmt("http://127.0.0.2:%d/chain/2", port_main), &o, URL_FETCH_OK);
  expect(fmt("http://127.0.0.2:%d/chain/3", port_main), &o, URL_FETCH_EREMOTE);
  o.max_redirects = -1; /* the default, 5 */
  expect(fmt("http://127.0.0.2:%d/chain/5", port_main), &o, URL_FETCH_OK);
  expect(fmt("http://127.0.0.2:%d/chain/6", port_main), &o, URL_FETCH_EREMOTE);

  /* relative forms that climb */
  r = fetch(fmt("http://127.0.0.2:%d/redir?to=../ok", port_main), &o);
  assert_int_equal(r.st, URL_FETCH_OK);
  assert_int_equal(r.len, 3000);
  free(r.data);
  r = fetch(fmt("http://127.0.0.2:%d/noloc", port_main), &o);
  assert_int_equal(r.st, URL_FETCH_EREMOTE);
  assert_int_equal(r.http, 302);
  expect(fmt("http://127.0.0.2:%d/redir?code=300&to=/ok", port_main), &o,
         URL_FETCH_EREMOTE);
}

static void test_cross_host_and_allow_hosts(void **state)
{
  url_fetch_opts o = opts_main();
  const char *hop = fmt("http://127.0.0.2:%d/redir?to=http://127.0.0.3:%d/ok",
                        port_main, port_three);
  /* 127.0.0.3 is re-checked on the hop: blocked, then allowed */
  expect(hop, &o, URL_FETCH_EFORBIDDEN);
  o.allow_cidrs = allow_two;
  o.n_allow_cidrs = 2;
  int before[4], after[4];
  hits(before);
  expect(hop, &o, URL_FETCH_OK);
  hits(after);
  assert_int_equal(after[1], before[1] + 1);

  const char *const only_two[] = {"127.0.0.2"};
  o.allow_hosts = only_two;
  o.n_allow_hosts = 1;
  expect(fmt("http://127.0.0.2:%d/ok", port_main), &o, URL_FETCH_OK);
  struct result r = fetch(hop, &o);
  assert_int_equal(r.st, URL_FETCH_EFORBIDDEN);
  assert_non_null(strstr(r.err, "allow-host"));

  /* the allow list restricts; it never unblocks an address */
  const char *const lh[] = {"localhost"};
  o.allow_hosts = lh;
  expect(fmt("http://127.0.0.2:%d/ok", port_main), &o, URL_FETCH_EFORBIDDEN);
  expect(fmt("http://localhost:%d/", port_trap), &o, URL_FETCH_EFORBIDDEN);

  /* exact and "*." names, case-insensitive, trailing dot ignored; the
   * allowed names do not resolve (.invalid), so they fail later */
  const char *const names[] = {"Example.INVALID", "*.sub.invalid"};
  o.allow_hosts = names;
  o.n_allow_hosts = 2;
  expect("http://example.invalid./", &o, URL_FETCH_ENETWORK);
  expect("http://a.b.SUB.invalid/", &o, URL_FETCH_ENETWORK);
  expect("http://sub.invalid/", &o, URL_FETCH_EFORBIDDEN);
  expect("http://evilsub.invalid/", &o, URL_FETCH_EFORBIDDEN);
  expect("http://example.invalid.evil/", &o, URL_FETCH_EFORBIDDEN);
  assert_traps_untouched();
}

static void test_body_cap(void **state)
{
  url_fetch_opts o = opts_main();
  o.max_bytes = 1000;
  for (int cl = 0; cl <= 1; cl++) {
    struct result r = fetch(fmt("http://127.0.0.2:%d/big?n=1000&cl=%d",
                                port_main, cl), &o);
    assert_int_equal(r.st, URL_FETCH_OK);
    assert_int_equal(r.len, 1000);
    free(r.data);
    expect(fmt("http://127.0.0.2:%d/big?n=1001&cl=%d", port_main, cl), &o,
           URL_FETCH_ETOOBIG);
  }
  o.max_bytes = 1 << 20;
  expect(fmt("http://127.0.0.2:%d/big?n=%d&cl=0", port_main, 5 << 20), &o,
         URL_FETCH_ETOOBIG);
  struct result r = fetch(fmt("http://127.0.0.2:%d/big?n=%d&cl=0", port_main,
                              1 << 20), &o);
  assert_int_equal(r.st, URL_FETCH_OK);
  assert_int_equal(r.len, 1 << 20);
  free(r.data);
  /* a Content-Length over the cap is refused from the headers: the body
   * that never comes is not waited for (else this would be ETIMEOUT) */
  o.timeout_ms = 8000;
  expect(fmt("http://127.0.0.2:%d/bigcl-stall", port_main), &o,
         URL_FETCH_ETOOBIG);
}

static void test_timeouts(void **state)
{
  url_fetch_opts o = opts_main();
  o.timeout_ms = 600;
  const char *paths[] = {"/slow", "/trickle", "/header-stall"};
  for (size_t i = 0; i < 3; i++)
    expect(fmt("http://127.0.0.2:%d%s", port_main, paths[i]), &o,
           URL_FETCH_ETIMEOUT);
  /* the deadline is for all hops together */
  expect(fmt("http://127.0.0.2:%d/redir?to=/slow", port_main), &o,
         URL_FETCH_ETIMEOUT);
}

static void test_remote_status(void **state)
{
  url_fetch_opts o = opts_main();
  const int codes[] = {404, 500, 403, 418};
  for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
    struct result r = fetch(fmt("http://127.0.0.2:%d/status/%d", port_main,
                                codes[i]), &o);
    assert_int_equal(r.st, URL_FETCH_EREMOTE);
    assert_int_equal(r.http, codes[i]);
    assert_non_null(strstr(r.err, fmt("%d", codes[i])));
  }
  /* nothing listens: a network error, no status */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0,
                          .sin_addr = {htonl(0x7f000002)}};
  socklen_t al = sizeof a;
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
  close(s);
  struct result r = fetch(fmt("http://127.0.0.2:%d/", ntohs(a.sin_port)), &o);
  assert_int_equal(r.st, URL_FETCH_ENETWORK);
  assert_int_equal(r.http, 0);
}

/* Proxy variables are ignored: a proxy would connect where we never
 * looked.  Here the "proxy" is the 127.0.0.1 trap. */
static void test_env_proxy_ignored(void **state)
{
  const char *vars[] = {"http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                        "all_proxy"};
  const char *proxy = fmt("http://127.0.0.1:%d", port_trap);
  for (size_t i = 0; i < 5; i++) setenv(vars[i], proxy, 1);
  url_fetch_opts o = opts_main();
  struct result r = fetch(fmt("http://127.0.0.2:%d/ok", port_main), &o);
  for (size_t i = 0; i < 5; i++) unsetenv(vars[i]);
  assert_int_equal(r.st, URL_FETCH_OK);
  assert_int_equal(r.len, 3000);
  free(r.data);
  assert_traps_untouched();
}

static void *worker(void *arg)
{
  long k = (long)arg, bad = 0;
  url_fetch_opts o = opts_main();
  for (int i = 0; i < 6; i++) {
    unsigned char *d = NULL;
    size_t n = 0;
    char err[200];
    int trap = (i + k) % 2;
    char url[256]; /* not fmt(): its ring is shared */
    if (trap)
      snprintf(url, sizeof url, "http://127.0.0.2:%d/redir?to=http://127.0.0.1:%d/",
               port_main, port_trap);
    else
      snprintf(url, sizeof url, "http://127.0.0.2:%d/chain/2", port_main);
    url_fetch_status st = url_fetch(url, &o, &d, &n, NULL, err, sizeof err);
    if (trap ? st != URL_FETCH_EFORBIDDEN : (st || n != 3 || memcmp(d, "end", 3)))
      bad++;
    free(d);
  }
  return (void *)bad;
}

static void test_concurrent(void **state)
{
  pthread_t th[8];
  for (long i = 0; i < 8; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)i), 0);
  long bad = 0;
  for (int i = 0; i < 8; i++) {
    void *b;
    pthread_join(th[i], &b);
    bad += (long)b;
  }
  assert_int_equal(bad, 0);
  assert_traps_untouched();
}

static void test_address_policy(void **state)
{
  const char *blocked[] = {
      "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1",
      "100.127.255.254", "127.0.0.1", "127.255.255.255", "169.254.169.254",
      "172.16.0.1", "172.31.255.255", "192.0.0.1", "192.0.2.1", "192.88.99.1",
      "192.168.0.1", "198.18.0.1", "198.19.255.255", "198.51.100.7",
      "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
      "255.255.255.255",
      "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
      "::127.0.0.1", "::8.8.8.8", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
      "64:ff9b:1::1", "100::1", "2001::1", "2001:2::1", "2001:db8::1",
      "2002:7f00:1::1", "2002:a00:1::", "3fff::1", "fc00::1", "fd12:3456::1",
      "fe80::1", "febf::1", "fec0::1", "ff02::1", "ff05::2", "::ffff:0:7f00:1",
      "4000::1", "5f00::1", "1::1",
  };
  const char *allowed[] = {
      "8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.0",
      "172.15.255.255", "172.32.0.0", "192.0.1.1", "192.169.0.1",
      "198.17.255.255", "198.20.0.0", "223.255.255.255", "11.0.0.1",
      "126.255.255.255", "128.0.0.1", "169.253.255.255", "169.255.0.1",
      "2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8",
      "64:ff9b::808:808", "2002:808:808::1", "2001:200::1",
  };
  char err[200];
  for (size_t i = 0; i < sizeof blocked / sizeof *blocked; i++) {
    url_fetch_status st = url_fetch_check_address(blocked[i], NULL, err, sizeof err);
    if (st != URL_FETCH_EFORBIDDEN) fail_msg("%s was not blocked", blocked[i]);
  }
  for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
    url_fetch_status st = url_fetch_check_address(allowed[i], NULL, err, sizeof err);
    if (st != URL_FETCH_OK) fail_msg("%s was blocked: %s", allowed[i], err);
  }
  assert_int_equal(url_fetch_check_address("localhost", NULL, err, sizeof err),
                   URL_FETCH_EBADURL);
  assert_int_equal(url_fetch_check_address("0x7f.1", NULL, err, sizeof err),
                   URL_FETCH_EBADURL);

  /* --allow-cidr opens exactly its range, in both families' forms */
  url_fetch_opts o;
  url_fetch_default_opts(&o);
  const char *const c[] = {"10.0.0.0/8", "fd00::/8", "169.254.169.254"};
  o.allow_cidrs = c;
  o.n_allow_cidrs = 3;
  assert_int_equal(url_fetch_check_address("10.9.8.7", &o, err, sizeof err), 0);
  assert_int_equal(url_fetch_check_address("::ffff:10.9.8.7", &o, err, sizeof err), 0);
  assert_int_equal(url_fetch_check_address("fd99::1", &o, err, sizeof err), 0);
  assert_int_equal(url_fetch_check_address("169.254.169.254", &o, err, sizeof err), 0);
  assert_int_equal(url_fetch_check_address("169.254.169.253", &o, err, sizeof err),
                   URL_FETCH_EFORBIDDEN);
  assert_int_equal(url_fetch_check_address("fc00::1", &o, err, sizeof err),
                   URL_FETCH_EFORBIDDEN);
  assert_int_equal(url_fetch_check_address("192.168.0.1", &o, err, sizeof err),
                   URL_FETCH_EFORBIDDEN);

  /* bad entries are an option error, reported by every entry point */
  const char *bad[] = {"10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/", "",
                       "10.0.0.0/8x", "/8", "10.0.0.0/-1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    o.allow_cidrs = &bad[i];
    o.n_allow_cidrs = 1;
    if (url_fetch_opts_check(&o, err, sizeof err) != URL_FETCH_EINVAL)
      fail_msg("allow-cidr \"%s\" accepted", bad[i]);
    unsigned char *d;
    size_t n;
    assert_int_equal(url_fetch(fmt("http://127.0.0.2:%d/ok", port_main), &o,
                               &d, &n, NULL, err, sizeof err),
                     URL_FETCH_EINVAL);
    assert_null(d);
  }
  for (int s = URL_FETCH_OK; s <= URL_FETCH_EINVAL; s++)
    assert_string_not_equal(url_fetch_status_str((url_fetch_status)s), "unknown");
}

/* A host name (not a literal) goes through the pinned CURLOPT_RESOLVE
 * path: "localhost", once its addresses are allowed, reaches the trap.
 * Runs last: it is the one test that may touch a trap. */
static void test_name_pinned(void **state)
{
  const char *const lo[] = {"127.0.0.1/32", "::1/128"};
  url_fetch_opts o = opts_main();
  o.allow_cidrs = lo;
  o.n_allow_cidrs = 2;
  int before[4], after[4];
  hits(before);
  assert_int_equal(before[2] + before[3], 0);
  struct result r = fetch(fmt("http://localhost:%d/x", port_trap), &o);
  assert_int_equal(r.st, URL_FETCH_OK);
  assert_int_equal(r.len, 4);
  assert_memory_equal(r.data, "TRAP", 4);
  free(r.data);
  hits(after);
  assert_int_equal(after[2] + after[3], 1);
}

/* ------------------------------------------------------------------------ */

static int start_server(void **state)
{
  int in[2], out[2];
  const char *py = getenv("CUTOUT_PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  if (pipe(in) || pipe(out)) return -1;
  server_pid = fork();
  if (server_pid < 0) return -1;
  if (server_pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execl(py, py, URL_FETCH_SERVER_PY, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  server_stdin = in[1];
  FILE *f = fdopen(out[0], "r");
  char line[128] = "";
  if (!f || !fgets(line, sizeof line, f) ||
      sscanf(line, "%d %d %d %d", &port_main, &port_three, &port_trap,
             &port_trap6) != 4) {
    fprintf(stderr, "url_fetch_server.py did not start: \"%s\"\n", line);
    return -1;
  }
  fclose(f);
  if (!port_trap6) fprintf(stderr, "note: no ::1 here, the IPv6 trap is off\n");
  return 0;
}

static int stop_server(void **state)
{
  if (server_stdin >= 0) close(server_stdin); /* the server exits on EOF */
  if (server_pid > 0) {
    int st;
    waitpid(server_pid, &st, 0);
  }
  return 0;
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fetch_ok),
      cmocka_unit_test(test_loopback_blocked_by_default),
      cmocka_unit_test(test_redirect_to_blocked),
      cmocka_unit_test(test_direct_blocked),
      cmocka_unit_test(test_schemes_and_bad_urls),
      cmocka_unit_test(test_redirect_limit),
      cmocka_unit_test(test_cross_host_and_allow_hosts),
      cmocka_unit_test(test_body_cap),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_remote_status),
      cmocka_unit_test(test_env_proxy_ignored),
      cmocka_unit_test(test_concurrent),
      cmocka_unit_test(test_address_policy),
      cmocka_unit_test(test_name_pinned),
  };
  return cmocka_run_group_tests(tests, start_server, stop_server);
}
