/* PROXY protocol v1/v2 parser. */
#include "net/proxy.h"
#include "t.h"

#include <arpa/inet.h>

static ssize_t p(const char *s, size_t len, int accept, cu_proxy_info_t *pi)
{
    return cu_proxy_parse(s, len, accept, pi);
}

static ssize_t p1(const char *s, cu_proxy_info_t *pi)
{
    return p(s, strlen(s), CU_PROXY_ACCEPT_ANY, pi);
}

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

int main(void)
{
    cu_proxy_info_t pi;
    char ip[INET6_ADDRSTRLEN];

    /* v1 */
    static const char tcp4[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /";
    CHECK(p1(tcp4, &pi) == 47);
    CHECK(pi.version == 1 && !pi.local && pi.family == AF_INET);
    inet_ntop(AF_INET, &((struct sockaddr_in *)&pi.src)->sin_addr, ip, sizeof(ip));
    CHECK(strcmp(ip, "192.168.0.1") == 0);
    CHECK(port_of(&pi.src) == 56324 && port_of(&pi.dst) == 443);
    /* every prefix is incomplete */
    for (size_t n = 1; n < 47; n++)
        CHECK(p(tcp4, n, CU_PROXY_ACCEPT_ANY, &pi) == -2);
    CHECK(p1("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n", &pi) == 36);
    CHECK(pi.family == AF_INET6 && port_of(&pi.src) == 65535 && port_of(&pi.dst) == 0);
    CHECK(p1("PROXY UNKNOWN\r\n", &pi) == 15 && pi.local && pi.family == AF_UNSPEC);
    CHECK(p1("PROXY UNKNOWN ffff::1 ::1 1 2\r\n", &pi) > 0 && pi.local);
    CHECK(p1("PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 ::1 ::1 1 2\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", &pi) == -1);
    CHECK(p1("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", &pi) == -1);
    {
        char longl[200];
        memset(longl, 'a', sizeof(longl));
        memcpy(longl, "PROXY UNKNOWN ", 14);
        CHECK(p(longl, 106, CU_PROXY_ACCEPT_ANY, &pi) == -2);
        CHECK(p(longl, 107, CU_PROXY_ACCEPT_ANY, &pi) == -1);
        memcpy(longl + 105, "\r\n", 2); /* 107 bytes with CRLF: the maximum */
        CHECK(p(longl, 150, CU_PROXY_ACCEPT_ANY, &pi) == 107);
    }
    CHECK(p1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", &pi) > 0);
    CHECK(p(tcp4, sizeof(tcp4) - 1, CU_PROXY_ACCEPT_V2, &pi) == -1);

    /* not a PROXY header at all */
    CHECK(p1("GET / HTTP/1.1\r\n", &pi) == 0);
    CHECK(p1("PROX", &pi) == -2);
    CHECK(p1("PROXX", &pi) == 0);
    CHECK(p1("\r\n\r\n", &pi) == -2); /* could be v2 */
    CHECK(p1("\r\n\r\nGET", &pi) == 0);

    /* v2 */
    static const unsigned char v2_4[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
                                         0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 10,   0,    0,    1,
                                         10,   0,    0,    2,    0x1f, 0x90, 0x00, 0x50, 'G'};
    CHECK(p((const char *)v2_4, sizeof(v2_4), CU_PROXY_ACCEPT_ANY, &pi) == 28);
    CHECK(pi.version == 2 && pi.family == AF_INET && !pi.local);
    CHECK(port_of(&pi.src) == 8080 && port_of(&pi.dst) == 80);
    CHECK(((struct sockaddr_in *)&pi.dst)->sin_addr.s_addr == htonl(0x0a000002));
    for (size_t n = 1; n < 28; n++)
        CHECK(p((const char *)v2_4, n, CU_PROXY_ACCEPT_ANY, &pi) == -2);
    CHECK(p((const char *)v2_4, sizeof(v2_4), CU_PROXY_ACCEPT_V1, &pi) == -1);
    {
        unsigned char b[64];
        memcpy(b, v2_4, sizeof(v2_4));
        b[12] = 0x20; /* LOCAL */
        CHECK(p((const char *)b, 28, CU_PROXY_ACCEPT_ANY, &pi) == 28 && pi.local);
        b[12] = 0x31; /* version 3 */
        CHECK(p((const char *)b, 28, CU_PROXY_ACCEPT_ANY, &pi) == -1);
        b[12] = 0x22; /* command 2 */
        CHECK(p((const char *)b, 28, CU_PROXY_ACCEPT_ANY, &pi) == -1);
        b[12] = 0x21;
        b[13] = 0x12; /* DGRAM */
        CHECK(p((const char *)b, 28, CU_PROXY_ACCEPT_ANY, &pi) == -1);
        b[13] = 0x31; /* AF_UNIX */
        CHECK(p((const char *)b, 28, CU_PROXY_ACCEPT_ANY, &pi) == -1);
        b[13] = 0x01; /* AF_UNSPEC */
        CHECK(p((const char *)b, 28, CU_PROXY_ACCEPT_ANY, &pi) == 28 && pi.local &&
              pi.family == AF_UNSPEC);
        b[13] = 0x11;
        b[15] = 0x0b; /* too short for AF_INET */
        CHECK(p((const char *)b, 28, CU_PROXY_ACCEPT_ANY, &pi) == -1);
        b[15] = 0x10; /* 4 bytes of TLV skipped */
        CHECK(p((const char *)b, 32, CU_PROXY_ACCEPT_ANY, &pi) == 32);
        b[13] = 0x21; /* AF_INET6 needs 36 */
        CHECK(p((const char *)b, 32, CU_PROXY_ACCEPT_ANY, &pi) == -1);
    }
    return t_done("test_proxy");
}
