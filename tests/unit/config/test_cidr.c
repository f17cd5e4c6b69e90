/* CIDR lists (forwarded_allow_ips, proxy_allow_ips, uwsgi allow lists): parsing as
 * gunicorn's ipaddress module does, and matching IPv4, IPv6 and v4-mapped peers. */
#include "config/config.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

static int has(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static int match4(const cu_cidrlist_t *l, const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return cu_cidr_match(l, (struct sockaddr *)&sa);
}

static int match6(const cu_cidrlist_t *l, const char *ip)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, ip, &sa.sin6_addr);
    return cu_cidr_match(l, (struct sockaddr *)&sa);
}

static void test_cidr(void)
{
    cu_cidrlist_t l = {0};
    char err[256];
    CHECK(cu_cidrlist_parse(&l, "127.0.0.1,::1", err, sizeof(err)) == CU_OK);
    CHECK(match4(&l, "127.0.0.1") && !match4(&l, "127.0.0.2"));
    CHECK(match6(&l, "::1") && !match6(&l, "::2"));
    CHECK(match6(&l, "::ffff:127.0.0.1")); /* v4-mapped peer matches the IPv4 entry */
    CHECK(!match6(&l, "::ffff:127.0.0.2"));

    CHECK(cu_cidrlist_parse(&l, " 10.0.0.0/8 , 192.168.1.0/255.255.255.0,2001:db8::/32,", err,
                            sizeof(err)) == CU_OK);
    CHECK(l.n == 3 && l.src.n == 3);
    CHECK(match4(&l, "10.255.1.2") && !match4(&l, "11.0.0.1"));
    CHECK(match4(&l, "192.168.1.77") && !match4(&l, "192.168.2.1"));
    CHECK(match6(&l, "2001:db8:1::5") && !match6(&l, "2001:db9::1"));
    CHECK(match6(&l, "::ffff:10.1.2.3"));

    CHECK(cu_cidrlist_parse(&l, "::ffff:10.0.0.0/104", err, sizeof(err)) == CU_OK);
    CHECK(match4(&l, "10.9.9.9") && match6(&l, "::ffff:10.9.9.9") && !match4(&l, "11.0.0.0"));

    CHECK(cu_cidrlist_parse(&l, "0.0.0.0/0", err, sizeof(err)) == CU_OK);
    CHECK(match4(&l, "8.8.8.8") && match6(&l, "::ffff:8.8.8.8") && !match6(&l, "2001::1"));

    CHECK(cu_cidrlist_parse(&l, "*", err, sizeof(err)) == CU_OK);
    CHECK(l.any && match4(&l, "1.2.3.4") && match6(&l, "2001::1"));

    CHECK(cu_cidrlist_parse(&l, "", err, sizeof(err)) == CU_OK && l.n == 0 && !l.any);
    CHECK(!match4(&l, "127.0.0.1"));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    CHECK(cu_cidr_match(&l, (struct sockaddr *)&un)); /* gunicorn trusts UNIX-socket peers */

    CHECK(cu_cidrlist_parse(&l, "10.0.0.1/8", err, sizeof(err)) == CU_ERROR);
    CHECK(has(err, "has host bits set"));
    CHECK(cu_cidrlist_parse(&l, "10.0.0.0/33", err, sizeof(err)) == CU_ERROR);
    CHECK(cu_cidrlist_parse(&l, "host.example", err, sizeof(err)) == CU_ERROR);
    CHECK(has(err, "does not appear to be an IPv4 or IPv6 network"));
    CHECK(cu_cidrlist_parse(&l, "010.0.0.1", err, sizeof(err)) == CU_ERROR);
    /* a failed parse leaves the list as it was */
    CHECK(l.n == 0);
    cu_cidrlist_free(&l);
}

/* Prefixes that do not fall on a byte boundary, and the edges of each range. */
static void test_cidr_bit_boundaries(void)
{
    cu_cidrlist_t l = {0};
    char err[256];
    CHECK(cu_cidrlist_parse(&l, "172.16.0.0/12", err, sizeof(err)) == CU_OK);
    CHECK(match4(&l, "172.16.0.0") && match4(&l, "172.31.255.255"));
    CHECK(!match4(&l, "172.15.255.255") && !match4(&l, "172.32.0.0"));

    CHECK(cu_cidrlist_parse(&l, "192.0.2.4/31", err, sizeof(err)) == CU_OK);
    CHECK(match4(&l, "192.0.2.4") && match4(&l, "192.0.2.5"));
    CHECK(!match4(&l, "192.0.2.3") && !match4(&l, "192.0.2.6"));

    CHECK(cu_cidrlist_parse(&l, "192.0.2.9/32", err, sizeof(err)) == CU_OK);
    CHECK(match4(&l, "192.0.2.9") && !match4(&l, "192.0.2.8"));

    CHECK(cu_cidrlist_parse(&l, "2001:db8::/127", err, sizeof(err)) == CU_OK);
    CHECK(match6(&l, "2001:db8::") && match6(&l, "2001:db8::1") && !match6(&l, "2001:db8::2"));

    CHECK(cu_cidrlist_parse(&l, "fe80::/10", err, sizeof(err)) == CU_OK);
    CHECK(match6(&l, "fe80::1") && match6(&l, "febf:ffff::1"));
    CHECK(!match6(&l, "fec0::1") && !match6(&l, "fe7f::1"));
    /* an IPv6 entry never matches an IPv4 peer, even one the list could map */
    CHECK(!match4(&l, "10.0.0.1"));

    CHECK(cu_cidrlist_parse(&l, "::/0", err, sizeof(err)) == CU_OK);
    CHECK(match6(&l, "2001:db8::1") && match6(&l, "::ffff:1.2.3.4"));
    CHECK(!match4(&l, "1.2.3.4")); /* a plain IPv4 peer is not in an IPv6 network */

    /* several entries: the first that matches wins, the order does not change the answer */
    CHECK(cu_cidrlist_parse(&l, "10.0.0.0/8,10.1.0.0/16,2001:db8::1", err, sizeof(err)) == CU_OK);
    CHECK(match4(&l, "10.1.2.3") && match4(&l, "10.200.0.1") && match6(&l, "2001:db8::1"));
    CHECK(!match6(&l, "2001:db8::2"));
    cu_cidrlist_free(&l);
}

/* What gunicorn's ipaddress.ip_network(strict=True) refuses is refused here too. */
static void test_cidr_refused(void)
{
    cu_cidrlist_t l = {0};
    char err[256];
    static const char *bad[] = {"10.0.0.0/-1",    "10.0.0.0/",    "1.2.3",
                                "1.2.3.4.5",      "256.0.0.0",    "::1/129",
                                "2001:db8::1/64", "10.0.0.0/8/8", "10.0.0.0 /8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = cu_cidrlist_parse(&l, bad[i], err, sizeof(err));
        CHECK(rc == CU_ERROR);
        if (rc != CU_ERROR)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
    }
    cu_cidrlist_free(&l);
}

int main(void)
{
    test_cidr();
    test_cidr_bit_boundaries();
    test_cidr_refused();
    return t_done("test_cidr");
}
